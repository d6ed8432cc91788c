"""Which audit records wait for the disk at commit: ``lookup.requested`` (and
every other event) does, ``lookup.completed`` does not (federator.audit.trail.RELAXED),
and the relaxation never leaks to the next user of the pooled connection."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, event

from federator.audit.trail import AuditTrail
from federator.storage import make_engine, upgrade


def _durability(dbapi: Any, dialect: str) -> str:
    cursor = dbapi.cursor()
    try:
        cursor.execute("PRAGMA synchronous" if dialect == "sqlite" else "SHOW synchronous_commit")
        return str(cursor.fetchone()[0])
    finally:
        cursor.close()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def test_only_lookup_completed_commits_without_waiting_for_the_disk(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    dialect = engine.dialect.name
    if dialect == "postgresql":
        return _queued_durability(engine, monkeypatch)
    seen: list[str] = []

    @event.listens_for(engine, "commit")
    def _at_commit(conn: Any) -> None:  # the setting in force for this commit
        seen.append(_durability(conn.connection.dbapi_connection, dialect))

    trail = AuditTrail(engine, checkpoint_every=0)
    trail.append("lookup.requested", lookup_id="L1", actor_id="u1", child_pseudonym="c" * 64,
                 authorities=["a"])
    requested = seen[-1]
    trail.append("lookup.completed", lookup_id="L1", actor_id="u1", outcomes=[])
    completed = seen[-2] if dialect == "sqlite" else seen[-1]  # sqlite: then the reset's commit
    trail.append("registry.changed", actor_id="u2", endpoint="a")
    changed = seen[-1]
    if dialect == "sqlite":  # 2 = FULL (the WAL is flushed at commit), 1 = NORMAL
        assert (requested, completed, changed) == ("2", "1", "2")
    else:
        assert (requested, completed, changed) == ("on", "off", "on")
    assert trail.verify().ok and trail.verify().count == 3


def _queued_durability(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL: an entry's durability point is its commit to the queue, one
    statement in autocommit over the driver (federator.audit.queue_writer), for the
    lookup's ``enqueue`` and for ``append`` alike; only ``lookup.completed``'s
    relaxes ``synchronous_commit`` for it. The integration's commit need not wait
    (the queue rows are on disk), whatever the event."""
    queued: list[str] = []
    execute = psycopg.Cursor.execute

    def spied(cursor: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        if str(query).startswith("INSERT INTO audit_queue"):
            assert cursor.connection.autocommit  # its own transaction
            queued.append("off" if "'synchronous_commit', 'off'" in str(query) else
                          _durability(cursor.connection, "postgresql"))
        return execute(cursor, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", spied)
    trail = AuditTrail(engine, checkpoint_every=0)
    trail.enqueue("lookup.requested", lookup_id="L0", actor_id="u0", child_pseudonym="d" * 64,
                  authorities=["a"])
    trail.enqueue("lookup.completed", lookup_id="L0", actor_id="u0", outcomes=[])
    assert queued == ["on", "off"]  # the lookup's own path
    assert trail.integrate_pending() == 2
    queued.clear()
    trail = AuditTrail(engine, checkpoint_every=0)
    trail.append("lookup.requested", lookup_id="L1", actor_id="u1", child_pseudonym="c" * 64,
                 authorities=["a"])
    trail.append("lookup.completed", lookup_id="L1", actor_id="u1", outcomes=[])
    trail.append("registry.changed", actor_id="u2", endpoint="a")
    assert queued == ["on", "off", "on"]
    assert trail.verify().ok and trail.verify().count == 5
    with engine.connect() as conn:  # and the pool's connections flush again
        assert _durability(conn.connection.dbapi_connection, "postgresql") == "on"


def test_the_connection_goes_back_to_the_pool_flushing(engine: Engine) -> None:
    trail = AuditTrail(engine, checkpoint_every=0)
    trail.append("lookup.completed", lookup_id="L1", actor_id="u1", outcomes=[])
    with engine.connect() as conn:
        value = _durability(conn.connection.dbapi_connection, engine.dialect.name)
    assert value == ("2" if engine.dialect.name == "sqlite" else "on")
