"""Every environment variable read anywhere is documented (issue 22).

The broker's code, the kit's, the gunicorn config and ``wsgi.py`` are scanned by
their syntax trees (``tests/support/env_reads.py``): each variable they read must be
a declared setting (``federator/config.py``, generated into docs/settings.md), one
of the serving variables listed there, or one of the kit's environment fallbacks
(generated into docs/kit-settings.md). A new ``os.environ["FEDERATOR_X"]`` added
without a declaration fails here, naming the file and line. The tests' and
benchmarks' own ``FEDERATOR_*`` variables are listed in docs/settings.md too.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from support.env_reads import Read, problems, reads, reads_under

from adapters.kit.settings import ENV_FALLBACKS, KitSettings
from adapters.kit.settings_doc import DESCRIPTIONS, OTHER_VARIABLES
from adapters.kit.settings_doc import DOC as KIT_DOC
from adapters.kit.settings_doc import render as render_kit
from federator.settings_doc import DOC, documented

ROOT = Path(__file__).resolve().parents[2]
#: The two readers whose variable names come from declarations.
DYNAMIC = {"federator/declared.py", "adapters/kit/settings.py"}
CODE = ("federator", "adapters", "config", "wsgi.py")
TOOLS = ("tests", "benchmarks", "scripts")


def known() -> set[str]:
    return documented() | set(ENV_FALLBACKS.values()) | set(OTHER_VARIABLES)


@pytest.mark.parametrize("source", [
    'os.environ["FEDERATOR_X"]', 'os.environ.get("FEDERATOR_X")',
    'os.environ.get("FEDERATOR_X", "1")', 'os.getenv("FEDERATOR_X")',
    'os.environ.setdefault("FEDERATOR_X", "1")', 'os.environ.pop("FEDERATOR_X", None)',
    '"FEDERATOR_X" in os.environ', 'env.get("FEDERATOR_X")', 'environ["FEDERATOR_X"]',
    'x = ("smtp", "KIT_X")',
])
def test_the_scanner_finds_each_way_of_reading_a_variable(source: str) -> None:
    assert [r.name for r in reads(source)] == [
        "KIT_X" if "KIT_X" in source else "FEDERATOR_X"]


def test_the_scanner_flags_a_computed_name_and_ignores_other_mappings() -> None:
    assert [r.name for r in reads('os.environ.get(PREFIX + name)')] == [None]
    assert reads('config.get("X"); app.config["FEDERATOR_TEST_URL"]', literals=False) == []


def test_an_undeclared_or_computed_read_is_reported_with_its_place() -> None:
    found = [Read("federator/x.py", 3, "FEDERATOR_NOT_DECLARED"),
             Read("federator/y.py", 9, None), Read("federator/declared.py", 1, None),
             Read("federator/z.py", 1, "FEDERATOR_PUBLIC_URL")]
    assert problems(found, known(), DYNAMIC) == [
        "federator/x.py:3: FEDERATOR_NOT_DECLARED is read but not documented",
        "federator/y.py:9: reads an environment variable whose name is computed; read "
        "declared settings instead"]


def test_every_variable_the_code_reads_is_documented() -> None:
    found = reads_under(ROOT, *CODE)
    assert {r.name for r in found} >= {"FEDERATOR_ENV", "GUNICORN_WORKERS", "KIT_SMTP_URL",
                                       "PROMETHEUS_MULTIPROC_DIR"}  # the scan sees them
    assert problems(found, known(), DYNAMIC) == []


def test_every_federator_variable_the_tests_and_benchmarks_read_is_documented() -> None:
    found = [r for r in reads_under(ROOT, *TOOLS, literals=False)
             if r.name is None or r.name.startswith("FEDERATOR_")]
    assert problems([r for r in found if r.name is not None], known(), set()) == []


def test_the_settings_page_names_every_documented_variable() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert [v for v in sorted(documented()) if f"| `{v}` |" not in text] == []
    assert "`FEDERATOR_PUBLIC_URL`" in text


def test_every_kit_setting_has_a_description_and_the_kit_page_is_current() -> None:
    names = [f.name for f in dataclasses.fields(KitSettings)]
    assert [n for n in names if not DESCRIPTIONS.get(n)] == [], "describe it in settings_doc"
    assert sorted(set(DESCRIPTIONS) - set(names)) == []
    assert KIT_DOC.read_text(encoding="utf-8") == render_kit(), (
        "docs/kit-settings.md is stale: federator-adapter settings-docs "
        "--output docs/kit-settings.md")
    text = KIT_DOC.read_text(encoding="utf-8")
    assert all(f"| `{n}` |" in text for n in names)
    assert all(f"| `{v}` |" in text for v in ENV_FALLBACKS.values())


def test_the_kit_reads_no_variable_beyond_its_fallbacks() -> None:
    found = [r for r in reads_under(ROOT, "adapters") if r.name is not None]
    assert {r.name for r in found} <= set(ENV_FALLBACKS.values()) | set(OTHER_VARIABLES)


def test_the_kit_command_writes_its_settings_page(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from adapters.kit.cli import main

    out = tmp_path / "kit-settings.md"
    result = CliRunner().invoke(main, ["settings-docs", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8") == render_kit()


def test_every_federator_variable_a_shell_script_names_is_documented() -> None:
    import re

    scripts = [p for p in (ROOT / "scripts").iterdir() if p.is_file()] + [ROOT / ".ci" / "run"]
    pattern = re.compile(r"\bFEDERATOR_[A-Z0-9_]*[A-Z0-9]\b")
    named = {m for p in scripts for m in pattern.findall(p.read_text(encoding="utf-8"))}
    assert named >= {"FEDERATOR_REQUIRE_SERVICES"}
    assert sorted(named - known()) == []
