"""The two distributions agree: the kit's (packaging/federator-adapter) and the broker's.

The kit's dependency list is a copy of part of the root pyproject.toml's; these
checks fail when the copies drift, when the kit imports a package it does not
declare, or when the kit's LICENSE is not the repository's.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
KIT = REPO / "packaging" / "federator-adapter"
#: What the kit's command line reaches (every `serve`, `check`, `estimate`, ... path).
KIT_ENTRY = "adapters.kit.cli"
#: Imported only where the feature is used, declared as an extra of the kit.
EXTRAS = {"sqlalchemy": "sql"}


def _project(path: Path) -> dict:
    return tomllib.loads(path.read_text(encoding="utf-8"))["project"]


def _requirements(lines: list[str]) -> dict[str, Requirement]:
    return {canonicalize_name(r.name): r for r in map(Requirement, lines)}


def _module_file(name: str) -> Path | None:
    parts = name.split(".")
    base = REPO.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imports_reached(entry: str) -> tuple[set[str], set[str]]:
    """(modules of ours, top-level third-party names) imported from ``entry`` on,
    following our own modules (function-level imports included)."""
    ours: set[str] = set()
    third: set[str] = set()
    todo = [entry]
    while todo:
        name = todo.pop()
        if name in ours:
            continue
        path = _module_file(name)
        if path is None:
            continue
        ours.add(name)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    module = f"{base}.{node.module}" if node.module else base
                else:
                    module = node.module or ""
                targets = [module] + [f"{module}.{a.name}" for a in node.names]
            for target in targets:
                top = target.split(".")[0]
                if top in ("adapters", "federator"):
                    todo.append(target)
                elif top and top not in sys.stdlib_module_names and top != "__future__":
                    third.add(top)
    return ours, third


def test_kit_never_reaches_the_broker():
    ours, _ = imports_reached(KIT_ENTRY)
    assert not [m for m in ours if m.split(".")[0] == "federator"]


def test_every_package_the_kit_imports_is_a_dependency_of_the_kit():
    kit = _project(KIT / "pyproject.toml")
    declared = set(_requirements(kit["dependencies"]))
    extras = {extra: set(_requirements(reqs))
              for extra, reqs in kit["optional-dependencies"].items()}
    owners = packages_distributions()
    _, third = imports_reached(KIT_ENTRY)
    assert {"flask", "joserfc", "waitress"} <= third  # the scan sees imports at all
    missing = []
    for top in sorted(third):
        dists = {canonicalize_name(d) for d in owners.get(top, [top])}
        if top in EXTRAS:
            if not dists & extras[EXTRAS[top]]:
                missing.append(f"{top} (extra {EXTRAS[top]})")
        elif not dists & declared:
            missing.append(top)
    assert not missing, f"imported by the kit, not in its dependencies: {missing}"


def test_kit_dependencies_are_the_brokers_ranges():
    root, kit = _project(REPO / "pyproject.toml"), _project(KIT / "pyproject.toml")
    broker = _requirements(root["dependencies"])
    kit_reqs = _requirements(kit["dependencies"] + kit["optional-dependencies"]["sql"])
    differ = {name: (str(req.specifier), str(broker[name].specifier) if name in broker else None)
              for name, req in kit_reqs.items()
              if name not in broker or broker[name].specifier != req.specifier}
    assert not differ, f"kit range vs broker range: {differ}"
    assert kit["version"] == root["version"]
    assert kit["requires-python"] == root["requires-python"]


def test_both_distributions_carry_the_repositorys_mit_licence():
    licence = (REPO / "LICENSE").read_bytes()
    assert licence.startswith(b"MIT License")
    assert (KIT / "LICENSE").read_bytes() == licence
    for project in (_project(REPO / "pyproject.toml"), _project(KIT / "pyproject.toml")):
        assert project["license"] == "MIT"
        assert project["license-files"] == ["LICENSE"]
