"""Reading the trail for verification and proofs: rows as plain tuples, fast.

``AuditTrail.verify`` walks every record; at a million records what costs is
per row, so rows come straight from the database driver (no SQLAlchemy
``Row`` objects): on PostgreSQL from one server-side cursor (psycopg, binary,
fetched in large batches: one index scan, whatever the planner's statistics
say), on SQLite in batches along the primary key (the rowid). Only the columns
verification checks are read, in ``walk.ROW`` order, the body as bytes.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, select

from federator.audit.chain import GENESIS, Verdict
from federator.audit.merkle import leaf_hash
from federator.audit.tables import audit_checkpoints
from federator.audit.verification import StoredCheckpoint, verify_trail
from federator.audit.walk import ROW
from federator.storage import audit_records


def _columns(body: str) -> str:
    return ", ".join(body if c == "body" else c for c in ROW)


#: The body as the bytes the database holds (its UTF-8): hashed and parsed as it is.
_PG_COLUMNS = _columns("convert_to(body, 'UTF8')")
_SQLITE_COLUMNS = _columns("CAST(body AS BLOB)")
BATCH = 10_000


def trail_rows(conn: Connection, start: int, end: int | None,
               batch: int = BATCH) -> Iterator[tuple[Any, ...]]:
    """Records ``start``..``end`` (None: to the head) as ``walk.ROW`` tuples."""
    for chunk in trail_chunks(conn, start, end, batch):
        yield from chunk


def trail_chunks(conn: Connection, start: int, end: int | None,
                 batch: int = BATCH) -> Iterator[Sequence[tuple[Any, ...]]]:
    """The same rows, in chunks of up to ``batch``."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        yield from _postgresql_chunks(conn, start, end, batch)
    elif dialect == "sqlite":
        yield from _sqlite_chunks(conn, start, end, batch)
    else:  # any other database SQLAlchemy speaks: the portable way
        query = select(*(audit_records.c[k] for k in ROW)).where(audit_records.c.seq >= start)
        if end is not None:
            query = query.where(audit_records.c.seq <= end)
        yield [tuple(row) for row in conn.execute(query.order_by(audit_records.c.seq))]


def prefetched(chunks: Iterator[Sequence[tuple[Any, ...]]], depth: int = 2
               ) -> Iterator[tuple[Any, ...]]:
    """The rows of ``chunks``, the next chunks read by a thread of their own while
    these are walked, so that the database's work and the driver's waits (which
    let the GIL go) overlap the walk's. ``chunks`` is used by that thread alone
    until this generator is closed, which stops the thread and closes ``chunks``
    (a walk stopped at a failure)."""
    ready: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for chunk in chunks:
                if not put(chunk):
                    return
            put(_DONE)
        except BaseException as e:  # raised in the walk's thread instead
            put(e)
        finally:
            chunks.close()

    reader = threading.Thread(target=read, name="audit-verify-reader", daemon=True)
    reader.start()
    try:
        while True:
            item = ready.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield from item
    finally:
        stop.set()
        reader.join()


_DONE = object()


def _flat(chunks: Iterator[Sequence[tuple[Any, ...]]]) -> Iterator[tuple[Any, ...]]:
    try:
        for chunk in chunks:
            yield from chunk
    finally:
        chunks.close()


def _postgresql_chunks(conn: Connection, start: int, end: int | None, batch: int
                       ) -> Iterator[Sequence[tuple[Any, ...]]]:
    driver = conn.connection.driver_connection
    assert driver is not None
    where, params = ("seq >= %s AND seq <= %s", (start, end)) if end is not None else (
        "seq >= %s", (start,))
    # A named (server-side) cursor in the connection's transaction: one scan.
    with driver.cursor(name="federator_verify", binary=True) as cursor:
        cursor.itersize = batch
        cursor.execute(f"SELECT {_PG_COLUMNS} FROM audit_records WHERE {where} "  # noqa: S608
                       "ORDER BY seq", params)
        while chunk := cursor.fetchmany(batch):
            yield chunk


def _sqlite_chunks(conn: Connection, start: int, end: int | None, batch: int
                   ) -> Iterator[Sequence[tuple[Any, ...]]]:
    driver = conn.connection.driver_connection
    assert driver is not None
    cursor = driver.cursor()
    last = end if end is not None else (1 << 63) - 1
    query = (f"SELECT {_SQLITE_COLUMNS} FROM audit_records "  # noqa: S608
             "WHERE seq >= ? AND seq <= ? ORDER BY seq LIMIT ?")
    try:
        at = start
        while chunk := cursor.execute(query, (at, last, batch)).fetchall():
            yield chunk
            at = chunk[-1][0] + 1
            if len(chunk) < batch:
                return
    finally:
        cursor.close()


def leaves(conn: Connection, first: int, last: int, batch: int = BATCH) -> Iterator[bytes]:
    """RFC 9162 leaf hashes of records first..last (a pruned record's is kept),
    stopping at the first gap."""
    cursor = first
    while cursor <= last:
        chunk = conn.execute(
            select(audit_records.c.seq, audit_records.c.body, audit_records.c.leaf)
            .where(audit_records.c.seq >= cursor, audit_records.c.seq <= last)
            .order_by(audit_records.c.seq).limit(batch)).all()
        if not chunk:
            return
        for seq, body, leaf in chunk:
            if seq != cursor:
                return
            yield bytes.fromhex(leaf) if body == "" else leaf_hash(body.encode())
            cursor += 1


def verify_stored(engine: Engine, *, start: int = 1, end: int | None = None,
                  batch: int = BATCH, jwks: Mapping[str, Any] | None = None,
                  held: Sequence[StoredCheckpoint] = ()) -> Verdict:
    """``AuditTrail.verify``: the chain from ``start`` and every signed checkpoint
    it reaches, the trail's own and those ``held`` outside it."""
    prev = GENESIS
    with engine.connect() as conn:
        if start > 1:
            before = conn.execute(
                select(audit_records.c.hash).where(audit_records.c.seq == start - 1)
            ).scalar()
            if before is None:
                return Verdict(False, 0, start - 1, f"record {start - 1} is missing")
            prev = before
        stored = [StoredCheckpoint(r.tree_size, r.signed, tuple(json.loads(r.frontier)))
                  for r in conn.execute(select(audit_checkpoints.c.tree_size,
                                               audit_checkpoints.c.signed,
                                               audit_checkpoints.c.frontier)).all()]
        chunks = trail_chunks(conn, start, end, batch)
        # PostgreSQL's backend works on its own core meanwhile: 95-99k records/s
        # inline, 109-122k prefetched (200,000 records, benchmarks/audit.py's trail);
        # SQLite's reads are this process's CPU, and it is a wash (about 105k/s)
        rows = prefetched(chunks) if conn.dialect.name == "postgresql" else _flat(chunks)
        try:
            return verify_trail(rows, [*stored, *held], jwks=jwks, start_seq=start,
                                start_prev=prev, end=end)
        finally:
            rows.close()  # a walk stopped at a failure: close the cursor first
