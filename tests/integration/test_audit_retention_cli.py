"""``federator audit prune|redact`` as an operator runs them, and ``verify``'s report
of a pruned range (real SQLite or PostgreSQL); every refusal names its field, with
no traceback."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from federator import create_app
from federator.cli import main
from federator.config import Settings

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
    old = datetime.now(UTC) - timedelta(days=400)
    for i in range(7):
        trail.clock = (lambda i=i: old + timedelta(minutes=i)) if i < 4 else (
            lambda: datetime.now(UTC))
        trail.append("lookup.requested", lookup_id=f"L{i}", actor_id="u1",
                     actor_organisation="Leeds", basis={"type": "consent", "reference": "R1"},
                     scope="targeted", purpose=f"Attendance worry {i}", authorities=["leeds-cs"])
    yield app
    app.extensions["federator"].engine.dispose()


def run(*args: str):
    result = CliRunner().invoke(main, ["audit", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.exception)
    return result


def test_prune_then_verify_reports_the_pruned_range(env, monkeypatch, tmp_path):
    monkeypatch.setenv("FEDERATOR_AUDIT_RETENTION_DAYS", "365")
    result = run("prune")
    assert result.exit_code == 0, result.output
    assert "pruned records 1–4 (4, written before " in result.output
    assert "recorded as record 8" in result.output
    result = run("verify")
    assert result.exit_code == 0, result.output
    assert "OK: 8 records verified: records 1–4 pruned (1–4 on " in result.output
    assert "by cli:" in result.output and "; 5–8 verified in full" in result.output
    assert run("prune").output.startswith("nothing to prune")
    today = date.today().isoformat()
    out = tmp_path / "x.jsonl"
    result = CliRunner().invoke(main, ["audit", "export", "--from", "2020-01-01", "--to",
                                       today, "--output", str(out)])
    assert result.exit_code == 0, result.output
    first = json.loads(out.read_text().splitlines()[0])
    assert first["pruned"] is True and "purpose" not in first and len(first["leaf"]) == 64
    result = run("verify", "--export", str(out), "--checkpoint", f"{out}.checkpoint.json")
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    fifth = json.loads(lines[4])
    assert fifth["purpose"] == "Attendance worry 4" and fifth["sealed"]["purpose"]
    lines[4] = json.dumps({**fifth, "purpose": "Routine"})  # the export's text changed
    out.write_text("\n".join(lines) + "\n")
    result = run("verify", "--export", str(out), "--checkpoint", f"{out}.checkpoint.json")
    assert result.exit_code == 1
    assert "BROKEN at record 5: the text of purpose does not match its sealed hash" in (
        result.output)


def test_prune_refusals_name_the_setting(env, monkeypatch):
    result = run("prune")
    assert result.exit_code == 1
    assert "FEDERATOR_AUDIT_RETENTION_DAYS: not set: nothing is pruned" in result.output
    monkeypatch.setenv("FEDERATOR_AUDIT_RETENTION_DAYS", "7")
    result = run("prune")
    assert result.exit_code != 0 and "FEDERATOR_AUDIT_RETENTION_DAYS" in result.output
    assert "Traceback" not in result.output


def test_redact_then_verify_passes_and_refusals_name_the_field(env):
    result = run("redact", "2", "purpose", "--reason", "Names the neighbour")
    assert result.exit_code == 0, result.output
    assert "redacted the purpose of record 2; recorded as record 8" in result.output
    assert run("verify").exit_code == 0
    cases = [
        (["redact", "2", "purpose", "--reason", "again"], "field: The purpose of record 2 "
         "was redacted already (record 8)."),
        (["redact", "99", "purpose", "--reason", "x"], "record: There is no record 99."),
        (["redact", "2", "purpose", "--reason", " "], "reason: Give the reason"),
        (["redact", "8", "purpose", "--reason", "x"], "field: Record 8 was written before "
         "free text was sealed (record format 1) or holds none"),
    ]
    for args, words in cases:
        result = run(*args)
        assert result.exit_code == 1 and words in result.output, result.output
    result = run("redact", "2", "name", "--reason", "x")
    assert result.exit_code == 2 and "Invalid value for 'FIELD'" in result.output


def test_prune_on_a_database_never_upgraded_says_so(tmp_path, monkeypatch):
    for name, value in {"FEDERATOR_ENV": "development", "FEDERATOR_INSTANCE_DIR": str(tmp_path),
                        "FEDERATOR_AUDIT_KEY": "a" * 40, "FEDERATOR_SECRET_KEY": "s" * 40,
                        "FEDERATOR_AUDIT_RETENTION_DAYS": "60"}.items():
        monkeypatch.setenv(name, value)
    result = run("prune")
    assert result.exit_code == 1 and "run `federator db upgrade` first" in result.output
