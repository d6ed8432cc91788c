"""Put the repository's ``adapters`` package into the kit's sdist and wheel.

In a checkout the package is two folders up (``../../adapters``); in an sdist
built from here it sits beside this file, copied in by the sdist. Each file is
named explicitly (no symlink, nothing outside the project at install time from
an sdist), and caches are left out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SKIP_DIRS = {"__pycache__"}
SKIP_SUFFIXES = {".pyc", ".pyo"}


def package_dir(root: Path) -> Path:
    for candidate in (root / "adapters", root.parents[1] / "adapters"):
        if (candidate / "__init__.py").is_file():
            return candidate
    raise FileNotFoundError(f"adapters/ not found beside {root} nor two folders up")


def package_files(source: Path) -> dict[str, str]:
    files: dict[str, str] = {}
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if not path.is_file() or SKIP_DIRS.intersection(relative.parts):
            continue
        if path.suffix in SKIP_SUFFIXES:
            continue
        files[str(path)] = f"adapters/{relative.as_posix()}"
    return files


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        source = package_dir(Path(self.root))
        build_data["force_include"].update(package_files(source))
