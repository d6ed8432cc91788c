"""``federator audit verify|export`` as an operator runs them (real SQLite or PostgreSQL)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import delete
from support.insider import insider

from federator import create_app
from federator.audit.checkpoints import open_checkpoint
from federator.cli import main
from federator.config import Settings
from federator.storage import audit_records

pytestmark = pytest.mark.integration


@pytest.fixture
def env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    values = {"FEDERATOR_ENV": "development", "FEDERATOR_INSTANCE_DIR": str(tmp_path),
              "FEDERATOR_DATABASE_URL": database_url, "FEDERATOR_AUDIT_KEY": "a" * 40,
              "FEDERATOR_SECRET_KEY": "s" * 40, "FEDERATOR_AUDIT_CHECKPOINT_EVERY": "3"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    app = create_app(Settings.from_env(), migrate=True)
    trail = app.extensions["federator"].trail
    for i in range(7):
        trail.append("lookup.requested", lookup_id=f"L{i}", actor_id="u1",
                     actor_organisation="Leeds", basis={"type": "consent"}, scope="targeted",
                     purpose="=HYPERLINK(\"x\")", authorities=["leeds-cs"])
    yield app
    app.extensions["federator"].engine.dispose()


def test_verify_reports_ok_with_the_count(env):
    result = CliRunner().invoke(main, ["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "OK: 7 records verified" in result.output


def test_verify_names_the_first_broken_record_and_exits_1(env):
    with insider(env.extensions["federator"].engine) as conn:
        conn.execute(delete(audit_records).where(audit_records.c.seq == 4))
    result = CliRunner().invoke(main, ["audit", "verify", "--from", "2"])
    assert result.exit_code == 1
    assert "BROKEN at record 4: record 4 is missing" in result.output


def test_export_writes_records_and_the_covering_checkpoint(env, tmp_path):
    today = date.today().isoformat()
    out = tmp_path / "trail.jsonl"
    result = CliRunner().invoke(main, ["audit", "export", "--from", today, "--to", today,
                                       "--format", "jsonl", "--output", str(out)])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    checkpoint = json.loads(Path(f"{out}.checkpoint.json").read_text())
    opened = open_checkpoint(checkpoint["signed"], env.extensions["federator"].keys.jwks())
    assert [r["seq"] for r in records] == list(range(1, opened.tree_size + 1))
    assert records[-1]["event"] == "audit.exported"  # the export is itself audited
    assert records[-1]["hash"] == opened.head_hash
    csv_out = tmp_path / "trail.csv"
    result = CliRunner().invoke(main, ["audit", "export", "--from", today, "--to", today,
                                       "--format", "csv", "--output", str(csv_out)])
    assert result.exit_code == 0, result.output
    text = csv_out.read_text()
    assert text.splitlines()[0].startswith("seq,at,event")
    assert "'=HYPERLINK" in text  # spreadsheet formulas are defused in display columns


def test_export_refuses_a_backwards_range_naming_the_option(env):
    result = CliRunner().invoke(main, ["audit", "export", "--from", "2026-02-02",
                                       "--to", "2026-01-01"])
    assert result.exit_code == 2 and "--from" in result.output
