"""Appends on PostgreSQL by batch sequencing (leader/follower group commit).

A writer commits its entry to ``audit_queue`` first, holding no lock: that commit
is flushed (for ``lookup.requested``, before any authority is asked), and
PostgreSQL merges the flushes of writers committing at once. It then tries the
trail's head lock. The writer that gets it (the leader) integrates every queued
entry, in queue order: numbered after the head, flagged from the trail's history
(read once for the batch, the batch's earlier entries folded in, ``folding``:
each entry's flags count every entry before it, as if appended one by one),
sealed and chained; the batch's records, filter rows and the deletion of its
queue rows are one statement, whose commit need not wait for the disk (the
queue rows are on disk and come back if it is lost; a later flushed commit
carries it to disk, WAL is replayed in order). The others wait for the leader
(a shared lock on the same key), find their record by its entry id and return
it; an entry committed too late for that batch is led by its own writer or the
next.

A writer killed after its queue commit leaves its entry to the next leader (any
append, the time-based checkpoint, the broker's start-up: ``integrate_pending``).
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Connection, bindparam, insert, select, text
from sqlalchemy.exc import SQLAlchemyError

from federator.audit.appending import Sealed, record_refs, sealed
from federator.audit.bulk_history import stored_histories
from federator.audit.chain import GENESIS, INDEXED
from federator.audit.flags import FlagLimits, completion_flags, lookup_flags
from federator.audit.folding import Batch, Stored
from federator.audit.history import load_history, matched_history, matched_lookups
from federator.audit.queue_checks import (
    MAX_FIELDS,
    Rejected,
    decode,
    problem_at,
    rejection,
    sha256_of,
)
from federator.audit.redaction import open_record
from federator.audit.tables import audit_authorities, audit_child_refs, audit_flags, audit_queue
from federator.names import LOOKUP_COMPLETED, LOOKUP_REQUESTED
from federator.storage import audit_records

if TYPE_CHECKING:
    from federator.audit.trail import AuditTrail

log = logging.getLogger(__name__)

#: Key of the PostgreSQL advisory lock that queues appenders (any fixed number).
HEAD_LOCK = 0x61756474
#: At most this many queued entries integrated per statement batch (a backlog,
#: after an outage, is worked through in several within the leader's transaction).
BATCH = 500

_HEAD = (select(audit_records.c.seq, audit_records.c.hash)
         .order_by(audit_records.c.seq.desc()).limit(1))
#: With each entry, whether its id is a record's already (only a row written into
#: the queue by hand can be: a queue row goes in the statement writing its
#: record). Fields longer than ``MAX_FIELDS`` are not read, only hashed.
_QUEUED = text(
    "SELECT q.id, q.entry, q.at, q.event, EXISTS (SELECT 1 FROM audit_records r "
    "WHERE r.entry = q.entry) AS taken, CASE WHEN length(q.fields) <= :most THEN q.fields "
    "END AS fields, CASE WHEN length(q.fields) > :most THEN "
    "encode(sha256(convert_to(q.fields, 'UTF8')), 'hex') END AS big_sha256 "
    "FROM audit_queue q ORDER BY q.id LIMIT :batch").bindparams(batch=BATCH, most=MAX_FIELDS)
_MINE = select(audit_records.c.body, audit_records.c.texts, audit_records.c.prev_hash,
               audit_records.c.hash).where(audit_records.c.entry == bindparam("entry"))
#: Lead, or wait for the leader and read the record (migration 0013_audit_queue).
_FOLLOW = text("SELECT lead, body, texts, prev_hash, hash "
               "FROM federator_audit_follow(:key, :entry, :wait)")
_UNLOCK = text("SELECT pg_advisory_unlock(:key)")
#: If anything is queued: the head lock (until the transaction ends), and that
#: transaction's commit not waiting for the disk; no row when nothing is queued
LOCK_IF_QUEUED = text(f"SELECT pg_advisory_xact_lock({HEAD_LOCK}), "  # noqa: S608 - a constant
                      "set_config('synchronous_commit', 'off', true) "
                      "WHERE EXISTS (SELECT 1 FROM audit_queue)")


def new_entry() -> str:
    return uuid.uuid4().hex


def take_head(conn: Connection, entry: str, trail: AuditTrail
              ) -> tuple[dict[str, Any] | None, list[Sealed]]:
    """After the entry's queue commit (``federator.audit.queue_writer``; ``conn``
    in autocommit): this entry's record, and the
    records this writer integrated as leader (for their checkpoints and alerts).
    A follower's whole wait is one statement (``federator_audit_follow``)."""
    wait = False
    while True:
        row = conn.execute(_FOLLOW, {"key": HEAD_LOCK, "entry": entry, "wait": wait}).first()
        if row is None:  # queued after the leader's batch: lead the next one
            wait = True
            continue
        if not row.lead:
            return _record(row), []
        return lead(conn, entry, trail)


def lead(conn: Connection, entry: str, trail: AuditTrail
         ) -> tuple[dict[str, Any] | None, list[Sealed]]:
    """Holding the head (a session lock): integrate every queued entry, each run
    committed without waiting for the disk, and let the head go."""
    try:
        # Still in autocommit: under the head lock nothing else writes records or
        # takes queue rows, so the reads need no transaction; each run's one
        # writing statement is its own, atomic (records in, their queue rows out)
        done = integrate(conn, trail, until=entry, relax=True)
        conn.execute(_UNLOCK, {"key": HEAD_LOCK})
    except BaseException:
        conn.invalidate()  # the server lets the session lock go with the connection
        raise
    own = next((s.record for s in done if s.row["entry"] == entry), None)
    return own or mine(conn, entry), done


def lock_head(conn: Connection) -> None:
    """Wait for the head lock (held until ``conn``'s transaction ends)."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": HEAD_LOCK})


def queued_or_done(conn: Connection, entry: str) -> bool:
    """Whether ``entry`` is in the queue or already a record."""
    return conn.execute(select(audit_queue.c.id).where(audit_queue.c.entry == entry)
                        ).first() is not None or mine(conn, entry) is not None


def mine(conn: Connection, entry: str) -> dict[str, Any] | None:
    """The record integrated from ``entry``, as ``append`` returns it (or None)."""
    row = conn.execute(_MINE, {"entry": entry}).first()
    return None if row is None else _record(row)


def _record(row: Any) -> dict[str, Any]:
    return {**open_record(json.loads(row.body), row.texts), "prev_hash": row.prev_hash,
            "hash": row.hash}


def integrate(conn: Connection, trail: AuditTrail, until: str | None = None,
              relax: bool = False) -> list[Sealed]:
    """Integrate queued entries into the chain, the caller holding the head lock
    (and committing, unless ``conn`` is in autocommit): every one queued, or
    batches until ``until`` is among them. ``relax``: commits of the runs need
    not wait for the disk (for ``conn`` in autocommit, a statement per run)."""
    done: list[Sealed] = []
    while True:
        batch = _integrate_batch(conn, trail, relax)
        done += batch
        if not batch or len(batch) < BATCH \
                or (until is not None and any(s.row["entry"] == until for s in batch)):
            return done


def _integrate_batch(conn: Connection, trail: AuditTrail, relax: bool) -> list[Sealed]:
    queued = conn.execute(_QUEUED).all()
    if not queued:
        return []
    head = conn.execute(_HEAD).first()
    seq, prev = (head.seq + 1, head.hash) if head else (1, GENESIS)
    now = trail.clock().isoformat(timespec="milliseconds")
    decoded = [Rejected("entry: its id is already a record's") if q.taken
               else decode(q.at, q.event, q.fields) for q in queued]
    limits = trail.flag_limits
    # Every request's history as the trail stood before the batch, in one read;
    # the batch's earlier records are folded in as each is flagged
    requested = [r for r in decoded if isinstance(r, dict) and r["event"] == LOOKUP_REQUESTED]
    stored = iter(stored_histories(conn, requested, limits))
    so_far = Batch()
    out: list[Sealed] = []
    rejected: list[dict[str, Any]] = []
    for q, record in zip(queued, decoded, strict=True):
        if isinstance(record, dict):
            history = next(stored) if record["event"] == LOOKUP_REQUESTED else None
            record = _flagged(conn, {"seq": seq, **record}, prev, q.entry, so_far, history,
                              limits)
        if isinstance(record, Rejected):
            record = sealed({"seq": seq, **rejection(
                q.id, q.at, q.event, q.big_sha256 or sha256_of(q.fields), record.reason, now)},
                prev, None if q.taken else q.entry)
            # the row as judged (a big one copied in the database, from the queue)
            rejected.append({"queue_id": q.id, "entry": q.entry, "at": q.at,
                             "event": q.event, "fields": q.fields, "seq": seq,
                             "reason": record.record["reason"]})
            log.error("audit queue entry %s rejected at record %s: %s", q.id, seq,
                      record.record["reason"])
        so_far.add(record)
        out.append(record)
        seq, prev = seq + 1, record.hash
    write_run(conn, out, [q.id for q in queued], relax=relax, rejected=rejected)
    return out


def _flagged(conn: Connection, record: dict[str, Any], prev: str, entry: str, so_far: Batch,
             history: Stored | None, limits: FlagLimits) -> Sealed | Rejected:
    """One queued entry's record flagged (its history folded with the batch's
    earlier records) and sealed after ``prev``; or why it cannot be."""
    if (reason := problem_at(record, record["seq"])) is not None:
        return Rejected(reason)
    try:
        return _sealed(conn, record, prev, entry, so_far, history, limits)
    except (SQLAlchemyError, MemoryError):
        raise  # the database's, or the machine's: the batch is tried again
    except Exception as e:  # what the pure code could not read in it
        return Rejected(f"fields: could not be flagged or sealed ({type(e).__name__})")


def _sealed(conn: Connection, record: dict[str, Any], prev: str, entry: str, so_far: Batch,
            history: Stored | None, limits: FlagLimits) -> Sealed:
    if record["event"] == LOOKUP_REQUESTED:
        assert history is not None
        record["flags"] = [*(record.get("flags") or []), *lookup_flags(
            record, so_far.history(record, history, limits), limits)]
    elif record["event"] == LOOKUP_COMPLETED and (refs := record_refs(record)):
        flags = completion_flags(*so_far.matched(record, refs, matched_lookups(
            conn, record, refs, limits, rows=so_far.stored_rows(refs)), limits), limits)
        if flags:
            record["flags"] = flags
    return sealed(record, prev, entry)


def flag(conn: Connection, record: dict[str, Any], limits: FlagLimits) -> None:
    """Add the flags the trail's history raises to ``record``, as the trail stands
    (``lookup.requested``: after those its caller computed, such as
    ``own_family_name``; ``lookup.completed`` whose authorities matched:
    ``repeat_lookups`` through the matched child)."""
    if record["event"] == LOOKUP_REQUESTED:
        record["flags"] = [*(record.get("flags") or []), *lookup_flags(
            record, load_history(conn, record, limits), limits)]
    elif record["event"] == LOOKUP_COMPLETED:
        refs = record_refs(record)
        if refs:
            flags = completion_flags(*matched_history(conn, record, refs, limits), limits)
            if flags:
                record["flags"] = flags


_COLUMNS = ("seq", "at", "event", "body", "prev_hash", "hash", "texts", "entry", *INDEXED)
#: Built from the constant column names above, nothing else. Each table's rows go
#: as one JSON document (``json_to_recordset``): a body full of quotes costs the
#: driver's text-array escaping far more than JSON encoding (issue 18: 40 % of an
#: integration's CPU). ``{relax}``: the statement's own transaction (autocommit)
#: commits without waiting for the disk.
_WRITE_RUN = (
    "WITH r AS (INSERT INTO audit_records (" + ", ".join(_COLUMNS) + ") SELECT x.* "  # noqa: S608
    "FROM json_to_recordset(CAST(:records AS json)) AS x("
    + ", ".join(f"{c} {'bigint' if c == 'seq' else 'text'}" for c in _COLUMNS) + "){relax}), "
    "a AS (INSERT INTO audit_authorities (seq, authority_id) SELECT x.* FROM "
    "json_to_recordset(CAST(:authorities AS json)) AS x(seq bigint, authority_id text)), "
    "c AS (INSERT INTO audit_child_refs (seq, authority_id, record_ref) SELECT x.* FROM "
    "json_to_recordset(CAST(:refs AS json)) AS x(seq bigint, authority_id text, "
    "record_ref text)), "
    "f AS (INSERT INTO audit_flags (seq, flag) SELECT x.* FROM "
    "json_to_recordset(CAST(:flags AS json)) AS x(seq bigint, flag text)){rejected} "
    "DELETE FROM audit_queue WHERE id = ANY(CAST(:done AS bigint[]))")
#: Only in a batch with rejected entries (queue_checks): their rows set aside as the
#: integrator read them; one too big to be read is copied from the queue (every
#: part of a statement sees the queue as it stood, so before the DELETE).
_REJECTED = (
    ", k AS (INSERT INTO audit_queue_rejected (queue_id, entry, at, event, fields, seq, "
    "reason) SELECT x.queue_id, x.entry, x.at, x.event, COALESCE(x.fields, q.fields, ''), "
    "x.seq, x.reason FROM json_to_recordset(CAST(:rejected AS json)) AS x(queue_id bigint, "
    "entry text, at text, event text, fields text, seq bigint, reason text) "
    "LEFT JOIN audit_queue q ON q.id = x.queue_id AND x.fields IS NULL)")
_RELAX = ", set_config('synchronous_commit', 'off', true)"
_WRITE = {(relax, rejected): text(_WRITE_RUN.format(relax=_RELAX if relax else "",
                                                     rejected=_REJECTED if rejected else ""))
          for relax in (False, True) for rejected in (False, True)}


def write_run(conn: Connection, records: list[Sealed], done: list[int], *,
              relax: bool = False, rejected: list[dict[str, Any]] | None = None) -> None:
    """PostgreSQL: a run's records, their filter rows, and the queue rows they came
    from deleted, in one statement (one round trip, whatever the run's size); the
    ``rejected`` queue rows (as read, with the seq written in their place and the
    reason) set aside in ``audit_queue_rejected``."""
    def text_or_none(value: Any) -> str | None:
        return None if value is None else str(value)

    rows = [{c: s.row[c] if c == "seq" else text_or_none(s.row[c]) for c in _COLUMNS}
            for s in records]
    conn.execute(_WRITE[relax, bool(rejected)], {
        "records": orjson.dumps(rows).decode(),
        "authorities": orjson.dumps([r for s in records for r in s.authorities]).decode(),
        "refs": orjson.dumps([r for s in records for r in s.refs]).decode(),
        "flags": orjson.dumps([r for s in records for r in s.flags]).decode(),
        "done": done, **({"rejected": orjson.dumps(rejected).decode()} if rejected else {})})


def write(conn: Connection, records: list[Sealed]) -> None:
    """Insert sealed records and their filter rows (a statement per table)."""
    if not records:
        return
    conn.execute(insert(audit_records), [s.row for s in records])
    for table, rows in ((audit_authorities, [r for s in records for r in s.authorities]),
                        (audit_child_refs, [r for s in records for r in s.refs]),
                        (audit_flags, [r for s in records for r in s.flags])):
        if rows:
            conn.execute(insert(table), rows)
