"""No test module imports another test module: shared helpers live in
``tests/support/`` (a package), so a test file can be moved, renamed or run on
its own without breaking another, and pytest never collects a test twice."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
SUPPORT = TESTS / "support"
SKIP = {"node_modules", ".venv", "__pycache__"}


def python_files(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*.py")):
        if not SKIP & set(path.relative_to(folder).parts):
            yield path


def helpers_beside_tests(tests: Path) -> set[str]:
    """Modules in the test folders that are neither tests, conftests nor support:
    what a test module could only import by reaching into another folder."""
    support = tests / "support"
    return {p.stem for p in python_files(tests)
            if support not in p.parents and not p.stem.startswith("test_")
            and p.stem not in ("conftest", "__init__")}


def imported(tree: ast.AST) -> Iterator[tuple[int, str, int]]:
    """(line, dotted module name, relative level) of every import in a module,
    those inside functions too."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, 0
        elif isinstance(node, ast.ImportFrom):
            yield node.lineno, node.module or "", node.level


def bad_imports(tests: Path, others: tuple[Path, ...] = ()) -> list[str]:
    """Every import, under ``tests`` (and ``others``, e.g. benchmarks), of a test
    module, a conftest, or a helper outside ``tests/support``."""
    support = tests / "support"
    beside = helpers_beside_tests(tests)
    found = []
    for folder in (tests, *others):
        for path in python_files(folder):
            in_support = support in path.parents
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for line, module, level in sorted(imported(tree)):
                parts = module.split(".") if module else []
                where = f"{path.relative_to(folder.parent)}:{line}: "
                if any(p.startswith("test_") or p == "conftest" for p in parts):
                    found.append(where + f"imports {module} (a test module or conftest)")
                elif level and not in_support:
                    found.append(where + f"relative import {'.' * level}{module}")
                elif parts and parts[0] in beside:
                    found.append(where + f"imports {module}, a helper beside the tests: "
                                 "move it to tests/support/")
    return found


def test_no_test_module_imports_another_test_module() -> None:
    assert bad_imports(TESTS, (ROOT / "benchmarks",)) == []


def test_the_check_finds_each_kind_of_bad_import(tmp_path: Path) -> None:
    tests = tmp_path / "tests"
    (tests / "support").mkdir(parents=True)
    (tests / "integration").mkdir()
    (tests / "support" / "__init__.py").write_text("")
    (tests / "support" / "servers.py").write_text("from . import other\n")
    (tests / "integration" / "helper.py").write_text("")
    (tests / "integration" / "test_a.py").write_text(
        "import os\nfrom support.servers import Server\n")
    (tests / "integration" / "test_b.py").write_text(
        "from test_a import thing\nimport helper\nfrom conftest import fixture\n"
        "def later():\n    import tests.integration.test_a\n")
    (tests / "integration" / "test_c.py").write_text("from .helper import x\n")
    assert bad_imports(tests) == [
        "tests/integration/test_b.py:1: imports test_a (a test module or conftest)",
        "tests/integration/test_b.py:2: imports helper, a helper beside the tests: "
        "move it to tests/support/",
        "tests/integration/test_b.py:3: imports conftest (a test module or conftest)",
        "tests/integration/test_b.py:5: imports tests.integration.test_a "
        "(a test module or conftest)",
        "tests/integration/test_c.py:1: relative import .helper",
    ]
