"""Migration 0006 (``endpoint_checks.target``) goes up, down and up again on
SQLite and PostgreSQL, and checks stored before it have no target (so those
endpoints are tested again before approval)."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, text

import federator.storage
from federator.registry.rules import approval_problem, connection_target
from federator.storage import make_engine

pytestmark = pytest.mark.integration

SCRIPTS = Path(federator.storage.__file__).parent / "migrations"


def migrate(engine: object, to: str, *, down: bool = False) -> None:
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    with engine.begin() as connection:  # type: ignore[attr-defined]
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, to)


def test_check_target_migrates_up_and_down(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        migrate(engine, "0005_audit_child_refs")
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO endpoint_checks (endpoint_id, kind, at, ok, result) "
                "VALUES ('leeds-cs', 'conformance', '2026-01-01T00:00:00', true, '[]')"))
        migrate(engine, "head")
        assert "target" in {c["name"] for c in inspect(engine).get_columns("endpoint_checks")}
        with engine.connect() as conn:
            old = conn.execute(text("SELECT ok, target FROM endpoint_checks")).one()
        assert old.target is None
        now = connection_target("federator-lookup/1", "https://a.example", None)
        assert "changed since" in (approval_problem({"passed": bool(old.ok),
                                                     "target": old.target}, now) or "")
        migrate(engine, "0005_audit_child_refs", down=True)
        assert "target" not in {c["name"] for c in
                                inspect(engine).get_columns("endpoint_checks")}
        migrate(engine, "head")
    finally:
        engine.dispose()
