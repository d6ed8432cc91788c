"""The registry's own tables (beside ``endpoints`` in ``federator.storage``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Boolean, Column, Integer, String, Table, Text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from federator.storage import endpoints, metadata

#: Why an endpoint is in its status, and who put it there (one row per endpoint).
endpoint_reviews = Table(
    "endpoint_reviews",
    metadata,
    Column("endpoint_id", String(64), primary_key=True),
    Column("reason", Text, nullable=True),
    Column("changed_by", String(200), nullable=False),
    #: the role of ``changed_by`` (0008_review_role): a broker admin's suspension is
    #: resumed only by a broker admin
    Column("changed_by_role", String(40), nullable=True),
    Column("changed_at", String(40), nullable=False),
    Column("registered_by", String(200), nullable=True),
)

#: Conformance checks and health probes, newest kept, older pruned.
endpoint_checks = Table(
    "endpoint_checks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("endpoint_id", String(64), nullable=False, index=True),
    Column("kind", String(20), nullable=False),  # "conformance" | "probe"
    Column("at", String(40), nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("latency_ms", Integer, nullable=True),
    Column("result", Text, nullable=False),  # JSON: checks, or the probe's detail
    # a conformance check's ``rules.connection_target``: approval needs one passed
    # for the endpoint's protocol, URL and credentials as they are (migration 0006)
    Column("target", String(64), nullable=True),
)


def upsert_endpoint(dialect: str, row: Mapping[str, Any], *, created_at: str) -> Insert:
    """``INSERT … ON CONFLICT (id) DO UPDATE``: one statement, so two processes
    seeding the same endpoint at once both succeed (the later one's values win;
    ``created_at`` stays the first)."""
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(dialect)
    if insert is None:
        raise ValueError(f"seeding the registry is not supported on {dialect}")
    statement = insert(endpoints).values(**row, created_at=created_at)
    return statement.on_conflict_do_update(
        index_elements=[endpoints.c.id],
        set_={k: statement.excluded[k] for k in row if k != "id"})
