"""Find the environment variables Python source reads, by its syntax tree (issue 22).

A read is ``os.environ[...]``, ``os.environ.get(...)`` / ``.pop`` / ``.setdefault``,
``os.getenv(...)``, ``... in os.environ``, and the same on a mapping named
``environ`` or ``env`` (how the settings readers take an injected environment).
With a literal name the read is named; with anything else (a variable, an
f-string) it is *dynamic*, and only the two readers whose names come from
declarations may do that. Names of the broker's and the kit's own prefixes
written anywhere as string literals (``("smtp_url", "KIT_SMTP_URL")``) count too,
since a dynamic reader may take them from a table.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

_ENV_NAMES = {"environ", "env"}
_METHODS = {"get", "pop", "setdefault"}
OWN_PREFIXES = re.compile(r"^(?:FEDERATOR|KIT)_[A-Z0-9_]*[A-Z0-9]$")


@dataclass(frozen=True)
class Read:
    path: str
    line: int
    name: str | None  # None: dynamic, the name is computed


def _is_env(node: ast.AST) -> bool:
    if isinstance(node, ast.Attribute) and node.attr == "environ":
        return True
    return isinstance(node, ast.Name) and node.id in _ENV_NAMES


def _name(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def reads(source: str, path: str = "<string>", *, literals: bool = True) -> list[Read]:
    """Every environment read in ``source``; with ``literals``, also every string
    literal naming a ``FEDERATOR_``/``KIT_`` variable."""
    found: list[Read] = []
    named: set[int] = set()  # the name nodes of reads found, not counted again as literals
    tree = ast.parse(source, filename=path)
    for node in ast.walk(tree):
        target: ast.AST | None = None
        hit = False
        if isinstance(node, ast.Subscript) and _is_env(node.value):
            hit, target = True, node.slice
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            func = node.func
            getenv = func.attr == "getenv" and isinstance(func.value, ast.Name) \
                and func.value.id == "os"
            if getenv or (func.attr in _METHODS and _is_env(func.value)):
                hit, target = True, node.args[0] if node.args else None
        elif isinstance(node, ast.Compare) and len(node.ops) == 1 \
                and isinstance(node.ops[0], ast.In | ast.NotIn) and _is_env(node.comparators[0]):
            hit, target = True, node.left
        if hit:
            found.append(Read(path, node.lineno, _name(target)))
            named.add(id(target))
        elif literals and isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and id(node) not in named and OWN_PREFIXES.match(node.value):
            found.append(Read(path, node.lineno, node.value))
    return found


def reads_under(root: Path, *relative: str, literals: bool = True) -> list[Read]:
    """Every read in the ``.py`` files at or under each of ``relative`` (from ``root``)."""
    found: list[Read] = []
    for rel in relative:
        base = root / rel
        files = [base] if base.is_file() else sorted(base.rglob("*.py"))
        for file in files:
            if "node_modules" in file.parts:
                continue
            found.extend(reads(file.read_text(encoding="utf-8"),
                               str(file.relative_to(root)), literals=literals))
    return found


def problems(found: list[Read], documented: set[str], dynamic_allowed: set[str]) -> list[str]:
    """What is wrong with ``found``: a name not in ``documented``, or a computed name
    read outside ``dynamic_allowed`` (paths), each with its file and line."""
    out = []
    for r in found:
        if r.name is None and r.path not in dynamic_allowed:
            out.append(f"{r.path}:{r.line}: reads an environment variable whose name is "
                       "computed; read declared settings instead")
        elif r.name is not None and r.name not in documented:
            out.append(f"{r.path}:{r.line}: {r.name} is read but not documented")
    return out
