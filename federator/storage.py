"""Durable records through SQLAlchemy Core: one code path for SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
)

metadata = MetaData()

endpoints = Table(
    "endpoints",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("code", String(20), nullable=False),
    Column("coverage", Text, nullable=False),  # JSON list of GSS codes or ["national"]
    Column("protocol", String(40), nullable=False),
    Column("url", String(500), nullable=False),
    Column("timeout_ms", Integer, nullable=False),
    Column("contact", String(500), nullable=False, server_default=""),
    Column("status", String(20), nullable=False),
    Column("credentials", Text, nullable=True),
    # JSON (migration 0009): fhir-r4's sensitive value set, restricted labels and
    # route (federator/registry/policy.py); none: the documented defaults
    Column("policy", Text, nullable=True),
    Column("created_at", String(40), nullable=False),
    Column("updated_at", String(40), nullable=False),
)

audit_records = Table(
    "audit_records",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=False),
    Column("at", String(40), nullable=False),
    Column("event", String(60), nullable=False, index=True),
    Column("lookup_id", String(40), nullable=True, index=True),
    Column("actor_id", String(200), nullable=True),
    Column("actor_role", String(60), nullable=True),
    Column("actor_organisation", String(200), nullable=True),
    Column("purpose", Text, nullable=True),
    Column("basis_type", String(40), nullable=True),
    # indexed with event, actor_id and at (migration 0004: ix_audit_records_child_actor)
    Column("child_pseudonym", String(64), nullable=True),
    Column("body", Text, nullable=False),  # canonical JSON of the whole record; '' pruned
    Column("prev_hash", String(64), nullable=False, unique=True),
    Column("hash", String(64), nullable=False, unique=True),
    # 0011_audit_retention: the sealed free text ({field: {salt, text}}), and the
    # leaf hash of a pruned body (federator.audit.redaction, federator.audit.retention)
    Column("texts", Text, nullable=True),
    Column("leaf", String(64), nullable=True),
    # 0013_audit_queue: the queue entry the record was integrated from (not hashed;
    # unique: no entry becomes two records), federator.audit.batching
    Column("entry", String(32), nullable=True),
    Index("ix_audit_records_entry", "entry", unique=True),
)


def make_engine(url: str, instance_dir: Path | None = None) -> Engine:
    """An engine for the configured database; SQLite gets WAL and a busy timeout."""
    if url.startswith("sqlite"):
        if instance_dir is not None:
            instance_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to the latest Alembic revision (or to ``revision``)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
