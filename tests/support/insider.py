"""Tampering with the trail as an insider with rights over the database would.

The audit tables refuse UPDATE and DELETE (migration 0007_audit_append_only);
whoever owns them can still switch that off. :func:`insider` opens a
transaction with the guards off, for the tests that rewrite, cut or drop parts
of the trail on purpose, and puts them back before it commits: the trail keeps
its guards afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, text

AUDIT_TABLES = ("audit_records", "audit_checkpoints", "audit_authorities", "audit_flags",
                "audit_child_refs", "audit_tree")


@contextmanager
def insider(engine: Engine) -> Iterator[Connection]:
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            for table in AUDIT_TABLES:  # a table's owner may; the application's role may not
                conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
            yield conn
            for table in AUDIT_TABLES:
                conn.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))
            return
        guards = [(name, sql) for name, table, sql in conn.execute(text(
            "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'"))
            if table in AUDIT_TABLES]
        for name, _ in guards:
            conn.execute(text(f'DROP TRIGGER "{name}"'))
        yield conn
        for _, sql in guards:
            conn.execute(text(sql))
