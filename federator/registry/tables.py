"""The registry's own tables (beside ``endpoints`` in ``federator.storage``)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Integer, String, Table, Text

from federator.storage import metadata

#: Why an endpoint is in its status, and who put it there (one row per endpoint).
endpoint_reviews = Table(
    "endpoint_reviews",
    metadata,
    Column("endpoint_id", String(64), primary_key=True),
    Column("reason", Text, nullable=True),
    Column("changed_by", String(200), nullable=False),
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
)
