"""The audit tables refuse UPDATE, DELETE and (PostgreSQL) TRUNCATE: only an
insider who first switches the guards off (``support.insider``) can rewrite the
trail, and afterwards the guards are back."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError
from support.insider import AUDIT_TABLES, insider

from federator.audit.flags import FlagLimits
from federator.audit.tables import audit_checkpoints
from federator.audit.trail import AuditTrail
from federator.signing import BrokerKeys
from federator.storage import audit_records, make_engine, upgrade

pytestmark = pytest.mark.integration


@pytest.fixture
def trail(database_url: str, tmp_path: Path):
    engine = make_engine(database_url)
    upgrade(engine)
    trail = AuditTrail(engine, checkpoint_every=2, flag_limits=FlagLimits(per_hour=1))
    trail.sign_with(BrokerKeys.load(tmp_path / "key.json", "federator", create=True))
    for i in range(4):
        trail.append("lookup.requested", actor_id="p1", lookup_id=f"l{i}",
                     authorities=["leeds"], child_pseudonym="c1")
    trail.append("lookup.completed", actor_id="p1", lookup_id="l3",
                 outcomes=[{"id": "leeds", "outcome": "match", "record_ref": "r1"}])
    yield trail
    engine.dispose()


def refused(engine, statement) -> str:
    with pytest.raises(DBAPIError) as caught, engine.begin() as conn:
        conn.execute(statement)
    return str(caught.value.orig)


def count(engine, table: str) -> int:
    with engine.connect() as conn:
        counting = text(f"SELECT count(*) FROM {table}")  # noqa: S608
        return int(conn.execute(counting).scalar_one())


def test_an_update_or_delete_of_any_audit_table_is_refused(trail):
    engine = trail.engine
    before = {t: count(engine, t) for t in AUDIT_TABLES}
    assert before["audit_records"] == 5 and before["audit_checkpoints"] == 2
    assert before["audit_authorities"] == 5 and before["audit_flags"] >= 1
    assert before["audit_child_refs"] == 1
    message = refused(engine, update(audit_records).where(audit_records.c.seq == 2)
                      .values(body="{}"))
    assert "the audit trail is append-only: UPDATE on audit_records is refused" in message
    message = refused(engine, delete(audit_records).where(audit_records.c.seq >= 3))
    assert "append-only: DELETE on audit_records is refused" in message
    for table in AUDIT_TABLES:
        deleting = text(f"DELETE FROM {table}")  # noqa: S608
        assert "append-only: DELETE on " + table in refused(engine, deleting)
        column = {"audit_checkpoints": "tree_size", "audit_tree": "idx"}.get(table, "seq")
        updating = text(f"UPDATE {table} SET {column} = {column} + 100")  # noqa: S608
        assert "append-only: UPDATE on " + table in refused(engine, updating)
        if engine.dialect.name == "postgresql":
            assert "append-only: TRUNCATE on " + table in refused(
                engine, text(f"TRUNCATE {table} CASCADE"))
    assert {t: count(engine, t) for t in AUDIT_TABLES} == before
    assert trail.verify().as_dict() == {"ok": True, "count": 5}
    trail.append("registry.updated", actor_id="admin", endpoint="e1")  # inserts still go
    assert count(engine, "audit_records") == 6


def test_an_insider_who_switches_the_guards_off_can_tamper_and_they_come_back(trail):
    engine = trail.engine
    with insider(engine) as conn:
        conn.execute(delete(audit_checkpoints))
        conn.execute(delete(audit_records).where(audit_records.c.seq == 5))
    assert count(engine, "audit_checkpoints") == 0
    with engine.connect() as conn:
        assert conn.execute(select(func.max(audit_records.c.seq))).scalar_one() == 4
    assert "append-only: DELETE on audit_records" in refused(
        engine, delete(audit_records).where(audit_records.c.seq == 3))
