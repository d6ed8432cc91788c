"""PostgreSQL, as docs/audit.md sets it up: an application role with SELECT and
INSERT on the trail and UPDATE of ``audit_records.texts`` only, the tables owned by
another role. As an insider with the application's role: no body can be changed
or emptied, no trigger disabled, a text can go only through a redaction that
leaves its ``audit.redacted`` record, and pruning is refused (the owner prunes)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import DBAPIError
from support.services import postgres_schema

from federator.audit.retention import RetentionError, prune, redact
from federator.audit.trail import AuditTrail
from federator.signing import BrokerKeys
from federator.storage import make_engine, upgrade

pytestmark = pytest.mark.integration

TABLES = ("audit_records, audit_checkpoints, audit_authorities, audit_flags, audit_child_refs, "
          "audit_tree")


def as_role(url: str, role: str) -> Engine:
    engine = make_engine(url)

    @event.listens_for(engine, "connect")
    def _set_role(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute(f'SET ROLE "{role}"')
        cursor.close()
        dbapi_connection.commit()

    return engine


@pytest.fixture
def roles(tmp_path: Path) -> Iterator[tuple[AuditTrail, AuditTrail]]:
    """(the owner's trail, the application's trail) over one schema."""
    owner, app = f"fo_{uuid.uuid4().hex[:10]}", f"fa_{uuid.uuid4().hex[:10]}"
    with postgres_schema() as url:
        admin = sqlalchemy.create_engine(url)
        schema = url.rsplit("%3D", 1)[1]
        with admin.begin() as conn:
            conn.execute(text(f'CREATE ROLE "{owner}" NOLOGIN'))
            conn.execute(text(f'CREATE ROLE "{app}" NOLOGIN'))
            conn.execute(text(f'GRANT USAGE, CREATE ON SCHEMA "{schema}" TO "{owner}"'))
            conn.execute(text(f'GRANT USAGE ON SCHEMA "{schema}" TO "{app}"'))
        owner_engine, app_engine = as_role(url, owner), as_role(url, app)
        try:
            # a deployment set up before 0014, upgraded since (0014 grants the
            # application role what the set-aside of a rejected entry needs)
            upgrade(owner_engine, "0013_audit_queue")
            with owner_engine.begin() as conn:  # docs/audit.md's grants
                conn.execute(text(f'GRANT SELECT, INSERT ON {TABLES} TO "{app}"'))
                conn.execute(text(f'GRANT UPDATE (texts) ON audit_records TO "{app}"'))
                conn.execute(text(f'GRANT SELECT ON alembic_version TO "{app}"'))
                # the queue appends go through (0013): not append-only, it is emptied
                conn.execute(text(f'GRANT SELECT, INSERT, DELETE ON audit_queue TO "{app}"'))
                conn.execute(text(f'GRANT USAGE ON SEQUENCE audit_queue_id_seq TO "{app}"'))
            upgrade(owner_engine)
            keys = BrokerKeys.load(tmp_path / "key.json", "federator", create=True)
            trails = []
            for engine in (owner_engine, app_engine):
                trail = AuditTrail(engine, checkpoint_every=2)
                trail.sign_with(keys)
                trails.append(trail)
            yield trails[0], trails[1]
        finally:
            owner_engine.dispose()
            app_engine.dispose()
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))  # postgres_schema drops it
                for role in (owner, app):
                    conn.execute(text(f'DROP OWNED BY "{role}"'))
                    conn.execute(text(f'DROP ROLE "{role}"'))
            admin.dispose()


def refused(engine: Engine, statement: str) -> str:
    with pytest.raises(DBAPIError) as caught, engine.begin() as conn:
        conn.execute(text(statement))
    return str(caught.value.orig)


def test_the_application_role_can_redact_through_the_path_and_nothing_else(roles):
    owner, app = roles
    old = datetime.now(UTC) - timedelta(days=400)
    app.clock = lambda: old
    for i in range(4):
        app.append("lookup.requested", lookup_id=f"L{i}", actor_id="p1",
                   purpose=f"Purpose {i}", authorities=["leeds"], child_pseudonym="c")
    app.clock = lambda: datetime.now(UTC)
    engine = app.engine
    assert "permission denied" in refused(engine, "UPDATE audit_records SET body = '' "
                                                  "WHERE seq = 1")
    assert "permission denied" in refused(engine, "DELETE FROM audit_records WHERE seq = 1")
    assert "permission denied" in refused(engine, "DELETE FROM audit_checkpoints")
    assert "must be owner" in refused(engine, "ALTER TABLE audit_records DISABLE TRIGGER USER")
    # the one column it may update: only into a redaction backed by its record
    swapped = json.dumps({"purpose": {"salt": "0" * 32, "text": "Other"}})
    with pytest.raises(DBAPIError) as caught, engine.begin() as conn:
        conn.execute(text("UPDATE audit_records SET texts = :t WHERE seq = 1"), {"t": swapped})
    assert "append-only" in str(caught.value.orig)
    assert "append-only" in refused(engine, "UPDATE audit_records SET texts = NULL "
                                            "WHERE seq = 1")
    done = redact(app, 1, "purpose", "Names a third party", {"actor_id": "aud",
                                                             "actor_role": "auditor"})
    assert app.records(event="audit.redacted")[0]["record"] == 1
    assert app.records(lookup_id="L0")[0]["redacted"] == {"purpose": done["redaction"]}
    with pytest.raises(RetentionError) as caught:
        prune(app, days=30, actor={"actor_id": "cli:app", "actor_role": "operator"})
    assert "run the prune as the role that owns the audit tables" in (
        caught.value.errors["database"])
    assert not app.records(event="audit.pruned")  # refused before anything was written
    pruned = prune(owner, days=30, actor={"actor_id": "cli:ops", "actor_role": "operator"})
    assert pruned is not None and pruned.last >= 4
    verdict = owner.verify()
    assert verdict.ok, verdict
    assert app.verify().ok  # verification needs SELECT only


def test_the_application_role_sets_a_malformed_queued_entry_aside(roles):
    """The integrator runs as the application role: after the upgrade to 0014 it
    may move a rejected entry's row to audit_queue_rejected, and may not delete it."""
    _, app = roles
    app.sequencer.wake = lambda: None
    with app.engine.begin() as conn:
        conn.execute(text("INSERT INTO audit_queue (entry, at, event, fields) "
                          "VALUES ('x1', '2026-12-04T10:00:00.000+00:00', 'lookup.requested', "
                          "'{')"))
    app.enqueue("lookup.requested", lookup_id="after", actor_id="jo", scope="targeted")
    assert [r["event"] for r in app.records()] == ["audit.entry_rejected", "lookup.requested"]
    with app.engine.connect() as conn:
        assert conn.execute(text("SELECT fields FROM audit_queue_rejected")).scalar_one() == "{"
    assert "permission denied" in refused(app.engine, "DELETE FROM audit_queue_rejected")
