"""``federator audit verify`` with nothing secret (``--keys``), after key
rotations, and offline on an export (``--export``); checkpoints on time
(real SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, select, update
from support.insider import insider

from federator import create_app
from federator.audit.checkpoints import Checkpoint, sign_checkpoint
from federator.audit.tables import audit_checkpoints
from federator.audit.trail import AuditTrail
from federator.cli import main
from federator.config import Settings
from federator.signing import BrokerKeys, read_ring
from federator.storage import make_engine, upgrade

pytestmark = pytest.mark.integration

SECRETS = ("FEDERATOR_SECRET_KEY", "FEDERATOR_AUDIT_KEY", "FEDERATOR_OIDC_ISSUER")


@pytest.fixture
def env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    values = {"FEDERATOR_ENV": "development", "FEDERATOR_INSTANCE_DIR": str(tmp_path),
              "FEDERATOR_DATABASE_URL": database_url, "FEDERATOR_AUDIT_KEY": "a" * 40,
              "FEDERATOR_SECRET_KEY": "s" * 40, "FEDERATOR_AUDIT_CHECKPOINT_EVERY": "3",
              "FEDERATOR_AUDIT_CHECKPOINT_INTERVAL_S": "0"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    app = create_app(Settings.from_env(), migrate=True)
    fill(app, 7)
    yield app
    app.extensions["federator"].engine.dispose()


def fill(app, n: int) -> None:
    trail = app.extensions["federator"].trail
    for i in range(n):
        trail.append("registry.updated", actor_id=f"admin-{i % 2}", endpoint=f"e{i}")


def published_keys(app, tmp_path: Path) -> Path:
    """What the broker publishes at /.well-known/federator-keys.json, saved."""
    answer = app.test_client().get("/.well-known/federator-keys.json")
    assert answer.status_code == 200
    path = tmp_path / "federator-keys.json"
    path.write_text(answer.get_data(as_text=True))
    return path


def as_operator_without_secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Production, no secrets, no key file: only the database and public keys."""
    monkeypatch.setenv("FEDERATOR_ENV", "production")
    for name in SECRETS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FEDERATOR_SIGNING_KEY_FILE", str(tmp_path / "absent.jwk.json"))


def test_verify_runs_with_the_database_and_the_public_keys_alone(env, tmp_path, monkeypatch):
    keys = published_keys(env, tmp_path)
    as_operator_without_secrets(monkeypatch, tmp_path)
    result = CliRunner().invoke(main, ["audit", "verify", "--keys", str(keys)])
    assert result.exit_code == 0, result.output
    assert "OK: 7 records verified" in result.output
    without = CliRunner().invoke(main, ["audit", "verify"])
    assert without.exit_code == 1
    assert "no public keys: pass --keys" in without.output


def test_a_database_never_upgraded_is_named_not_a_traceback(database_url, tmp_path,
                                                             monkeypatch):
    monkeypatch.setenv("FEDERATOR_ENV", "production")
    monkeypatch.setenv("FEDERATOR_DATABASE_URL", database_url)
    keys = tmp_path / "keys.json"
    keys.write_text('{"keys": []}')
    result = CliRunner().invoke(main, ["audit", "verify", "--keys", str(keys)])
    assert result.exit_code == 1
    assert "run `federator db upgrade` first" in result.output
    assert "Traceback" not in result.output


def test_rotation_without_overlap_then_verify_passes(env, tmp_path, monkeypatch):
    old_kid = env.extensions["federator"].keys.key.kid
    rotated = CliRunner().invoke(main, ["keys", "rotate", "--overlap", "0"])
    assert rotated.exit_code == 0, rotated.output
    after = create_app(Settings.from_env())  # a broker started after the rotation
    try:
        fill(after, 5)  # checkpoints at 9 and 12, signed with the new key
        trail = after.extensions["federator"].trail
        assert trail.latest().kid != old_kid
        assert trail.verify().ok, trail.verify()  # what /api/v1/audit/verify answers
        result = CliRunner().invoke(main, ["audit", "verify"])
        assert result.exit_code == 0, result.output
        assert "OK: 12 records verified" in result.output
        keys = published_keys(after, tmp_path)
        statuses = {k["kid"]: k["status"] for k in json.loads(keys.read_text())["keys"]}
        assert statuses[old_kid] == "retired"
        live = after.test_client().get("/.well-known/jwks.json").get_json()
        assert old_kid not in {k["kid"] for k in live["keys"]}  # not usable for requests
        as_operator_without_secrets(monkeypatch, tmp_path)
        result = CliRunner().invoke(main, ["audit", "verify", "--keys", str(keys)])
        assert result.exit_code == 0, result.output
        plain = tmp_path / "jwks.json"
        plain.write_text(json.dumps(live))
        result = CliRunner().invoke(main, ["audit", "verify", "--keys", str(plain)])
        assert result.exit_code == 1
        assert f"signed with an unknown key ({old_kid})" in result.output
    finally:
        after.extensions["federator"].engine.dispose()


def test_a_key_used_after_its_retirement_is_named(env, tmp_path):
    key_file = tmp_path / "signing-key.jwk.json"
    old = read_ring(key_file)[-1].key
    assert CliRunner().invoke(main, ["keys", "rotate", "--overlap", "0"]).exit_code == 0
    late = datetime.now(UTC) + timedelta(hours=1)
    engine = env.extensions["federator"].engine
    with insider(engine) as conn:
        row = conn.execute(select(audit_checkpoints).where(
            audit_checkpoints.c.tree_size == 6)).mappings().one()
        forged = sign_checkpoint(Checkpoint(
            log="federator", tree_size=6, root_hash=row["root_hash"],
            head_hash=row["head_hash"], at=late.isoformat(timespec="milliseconds")), old)
        conn.execute(update(audit_checkpoints).where(audit_checkpoints.c.tree_size == 6)
                     .values(signed=forged.signed))
    result = CliRunner().invoke(main, ["audit", "verify"])
    assert result.exit_code == 1
    assert f"with key {old.kid}, outside its validity window" in result.output
    assert "the checkpoint signed at record 6" in result.output


def test_a_held_checkpoint_outside_the_range_walked_is_not_called_contained(env, tmp_path):
    today = date.today().isoformat()
    out = tmp_path / "trail.jsonl"
    assert CliRunner().invoke(main, ["audit", "export", "--from", today, "--to", today,
                                     "--output", str(out)]).exit_code == 0
    keys = published_keys(env, tmp_path)
    args = ["audit", "verify", "--keys", str(keys), "--checkpoint", f"{out}.checkpoint.json"]
    assert CliRunner().invoke(main, args).exit_code == 0  # the whole trail reaches it
    short = CliRunner().invoke(main, [*args, "--to", "2"])
    assert short.exit_code == 1
    assert "lies outside --from/--to" in short.output and "contained" not in short.output


def test_an_export_verifies_offline_and_a_changed_line_is_named(env, tmp_path, monkeypatch):
    today = date.today().isoformat()
    out = tmp_path / "trail.jsonl"
    exported = CliRunner().invoke(main, ["audit", "export", "--from", today, "--to", today,
                                         "--output", str(out)])
    assert exported.exit_code == 0, exported.output
    keys = published_keys(env, tmp_path)
    as_operator_without_secrets(monkeypatch, tmp_path)
    monkeypatch.setenv("FEDERATOR_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    args = ["audit", "verify", "--export", str(out), "--checkpoint",
            f"{out}.checkpoint.json", "--keys", str(keys)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "OK: 8 records verified, 1 held checkpoint contained" in result.output
    original = out.read_text().splitlines()
    record = json.loads(original[3])
    record["endpoint"] = "elsewhere"
    changed = [*original[:3], json.dumps(record, sort_keys=True, separators=(",", ":")),
               *original[4:]]
    out.write_text("\n".join(changed) + "\n")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert "BROKEN at record 4: record content does not match its hash" in result.output
    out.write_text("\n".join(original[:5]) + "\n")  # its tail cut
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert "BROKEN at record 6: record 6 is missing: the checkpoint in " in result.output


# -- checkpoints on time ------------------------------------------------------------------


@pytest.fixture
def engine(database_url: str):
    engine = make_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def trail_of(engine, tmp_path: Path, interval_s: float) -> AuditTrail:
    trail = AuditTrail(engine, checkpoint_every=0, checkpoint_interval_s=interval_s)
    trail.sign_with(BrokerKeys.load(tmp_path / "key.json", "federator", create=True))
    return trail


def test_one_process_signs_when_due_and_the_others_find_it_done(engine, tmp_path):
    first, second = trail_of(engine, tmp_path, 60), trail_of(engine, tmp_path, 60)
    for trail in (first, second):
        trail.close()  # no timers: called by hand here
    for i in range(3):
        first.append("registry.updated", endpoint=f"e{i}")
    assert first.latest() is None  # nothing on count
    now = datetime.now(UTC)
    assert first.checkpoint_if_due(now) is None  # signed: nothing left
    assert first.latest().tree_size == 3
    second.append("registry.updated", endpoint="e3")
    wait = second.checkpoint_if_due(now + timedelta(seconds=20))
    assert wait == pytest.approx(40, abs=0.01)  # the other process signed 20 s ago
    assert second.checkpoint_if_due(now + timedelta(seconds=61)) is None
    assert second.latest().tree_size == 4
    assert second.checkpoint_if_due(now + timedelta(seconds=200)) is None  # all signed
    with engine.connect() as conn:
        assert conn.execute(select(audit_checkpoints.c.tree_size)).scalars().all() == [3, 4]
    assert second.verify().ok


def test_a_quiet_trail_is_covered_after_the_interval(engine, tmp_path):
    trail = trail_of(engine, tmp_path, 0.3)
    try:
        trail.append("registry.updated", endpoint="e0")
        assert trail.cadence.pending()
        limit = time.monotonic() + 20
        while trail.latest() is None and time.monotonic() < limit:
            time.sleep(0.05)
        assert trail.latest() is not None and trail.latest().tree_size == 1
    finally:
        trail.close()


def test_the_latest_signed_checkpoint_is_what_requests_carry(engine, tmp_path):
    trail = trail_of(engine, tmp_path, 0)
    assert trail.latest_signed() is None
    trail.append("registry.updated", endpoint="e0")
    signed = trail.checkpoint()
    assert trail.latest_signed() == signed.signed
    with insider(engine) as conn:
        conn.execute(delete(audit_checkpoints))
    assert trail.latest_signed() == signed.signed  # this process's copy, for a second


def test_the_timer_stops_with_the_engine(database_url, tmp_path):
    engine = make_engine(database_url)
    upgrade(engine)
    trail = trail_of(engine, tmp_path, 60)
    trail.append("registry.updated", endpoint="e0")
    assert trail.cadence.pending()
    engine.dispose()  # what the app's owner does at shutdown
    assert not trail.cadence.pending()
    trail.append("registry.updated", endpoint="e1")  # the trail still works, on count only
    assert not trail.cadence.pending()
    engine.dispose()
