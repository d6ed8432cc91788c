"""Retention and redaction: the two ways a record's content may leave the trail.

**Pruning** (``prune``, ``federator audit prune``): records older than
``FEDERATOR_AUDIT_RETENTION_DAYS`` lose their body, their free text and their
filter columns and rows; their hashes (``prev_hash``, ``hash``) and their Merkle
leaf hash (``leaf``) stay, so the chain's links and every checkpoint's root still
verify. Only records a signed checkpoint covers are pruned (their leaves are
pinned by a signature). An ``audit.pruned`` record is written first: who, when,
the cut-off, and the range pruned so far (``first`` to ``last``, this prune's
``newly``); the database lets a body go only under such a record (0009's
triggers), and ``verify`` fails on a body gone without one.

**Redaction** (``redact``, the auditors' API and page, ``federator audit redact``):
one sealed free text field of a format 2 record (``federator.audit.redaction``) is
replaced by a marker naming the ``audit.redacted`` record written first (who, why).

Each writes its audit record through ``AuditTrail.append`` and then changes the
rows in transactions of their own: a crash between the two leaves the audit record
standing. Running the prune again writes a new ``audit.pruned`` record (whoever
runs it is on record for what it empties) and goes on from the last pruned row; a
redaction run again finds its ``audit.redacted`` record and finishes the change.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, select, text, update
from sqlalchemy.exc import DBAPIError

from federator.audit.merkle import leaf_hash
from federator.audit.redaction import SEALED_FIELDS
from federator.audit.tables import (
    audit_authorities,
    audit_child_refs,
    audit_flags,
    audit_queue_rejected,
)
from federator.names import AUDIT_PRUNED, AUDIT_REDACTED
from federator.storage import audit_records as r

#: Filter columns a prune empties (``at`` and ``event`` stay: when, and what kind).
EMPTIED = ("lookup_id", "actor_id", "actor_role", "actor_organisation", "purpose",
           "basis_type", "child_pseudonym")
BATCH = 500
REASON_MAX = 500


class RetentionError(ValueError):
    """A prune or redaction that cannot be done; ``errors`` names each field."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)


@dataclass(frozen=True)
class Pruned:
    first: int  # the first record this prune emptied
    last: int
    record: int  # the audit.pruned record
    before: str  # the cut-off: records written before it

    @property
    def count(self) -> int:
        return self.last - self.first + 1


def _refused(e: DBAPIError, what: str) -> RetentionError:
    detail = str(e.orig).splitlines()[0] if e.orig is not None else type(e).__name__
    hint = (" Run it as the role that owns the audit tables (docs/audit.md): the "
            "application's role may not empty a body." if "permission denied" in detail
            else "")
    return RetentionError({"database": f"{what} was refused: {detail}.{hint}"})


def _latest_prune(conn: Connection) -> tuple[int, dict[str, Any]] | None:
    row = conn.execute(select(r.c.seq, r.c.body).where(r.c.event == AUDIT_PRUNED, r.c.body != "")
                       .order_by(r.c.seq.desc()).limit(1)).first()
    return (row.seq, json.loads(row.body)) if row else None


def _pruned_to(conn: Connection) -> int:
    """The last pruned record (0: none), through the index of pruned rows (0009's
    ``ix_audit_records_pruned``, which appends never touch)."""
    return int(conn.execute(select(func.max(r.c.seq)).where(r.c.body == "")).scalar() or 0)


def _unpruned(conn: Connection, first: int, last: int) -> list[tuple[int, str]]:
    return [(row.seq, row.body) for row in conn.execute(
        select(r.c.seq, r.c.body).where(r.c.seq >= first, r.c.seq <= last, r.c.body != "")
        .order_by(r.c.seq).limit(BATCH))]


def prune(trail: Any, *, days: int | None, actor: Mapping[str, Any],
          now: datetime | None = None) -> Pruned | None:
    """Empty the bodies of records older than ``days``, up to the latest signed
    checkpoint. None when there is nothing to prune."""
    if days is None:
        raise RetentionError({"FEDERATOR_AUDIT_RETENTION_DAYS": (
            "not set: nothing is pruned until a retention period is decided and set")})
    if days < 30:
        raise RetentionError({"FEDERATOR_AUDIT_RETENTION_DAYS": "must be 30 or more"})
    before = ((now or datetime.now(UTC)) - timedelta(days=days)).isoformat(
        timespec="milliseconds")
    engine = trail.engine
    _may_empty(engine)
    trail.checkpoint()  # cover what is there (no-op when signed, or without keys)
    signed = trail.latest()
    if signed is None:
        raise RetentionError({"checkpoint": (
            "the trail has no signed checkpoint: only records a checkpoint covers are "
            "pruned (load the broker's signing key, FEDERATOR_SIGNING_KEY_FILE)")})
    with engine.connect() as conn:
        # the last record this prune may empty: older than the cut-off (and every
        # record before it too), and covered by the latest signed checkpoint
        newer = conn.execute(select(r.c.seq).where(r.c.at >= before)
                             .order_by(r.c.seq).limit(1)).scalar()
        limit = min(signed.tree_size, (newer - 1) if newer is not None else signed.tree_size)
    with engine.connect() as conn:  # what is pruned, not what a record says is
        first = _pruned_to(conn) + 1
    # each audit.pruned record covers every prune before it: older ones may go too
    last = limit
    if last < first:
        return None
    record = trail.append(AUDIT_PRUNED, **actor, first=1, last=last, newly=[first, last],
                          before=before, records=last - first + 1,
                          checkpoint={"tree_size": signed.tree_size,
                                      "root_hash": signed.root_hash})
    _empty(engine, first, last)
    return Pruned(first, last, record["seq"], before)


def _may_empty(engine: Any) -> None:
    """On PostgreSQL, refuse before anything is written when this role may not
    empty a body (the application's role: docs/audit.md)."""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect() as conn:
        allowed = conn.execute(text(
            "SELECT has_column_privilege('audit_records', 'body', 'UPDATE') "
            "AND has_table_privilege('audit_child_refs', 'DELETE')")).scalar()
    if not allowed:
        raise RetentionError({"database": (
            "this role may not empty a body (no UPDATE of audit_records.body): run the "
            "prune as the role that owns the audit tables (docs/audit.md)")})


def _empty(engine: Any, first: int, last: int) -> None:
    statement = (update(r).where(r.c.seq == bindparam("s"), r.c.body != "")
                 .values(body="", texts=None, leaf=bindparam("l"), **dict.fromkeys(EMPTIED)))
    cursor = first  # past the batches done: each batch reads only rows not yet seen
    while True:
        try:
            with engine.begin() as conn:
                rows = _unpruned(conn, cursor, last)
                if not rows:
                    return
                cursor = rows[-1][0] + 1
                conn.execute(statement, [{"s": seq, "l": leaf_hash(body.encode()).hex()}
                                         for seq, body in rows])
                lo, hi = rows[0][0], rows[-1][0]
                # and a rejected entry's raw row (queue_checks), with its record's body
                for table in (audit_authorities, audit_flags, audit_child_refs,
                              audit_queue_rejected):
                    conn.execute(delete(table).where(table.c.seq >= lo, table.c.seq <= hi))
        except DBAPIError as e:
            raise _refused(e, "emptying the bodies") from e


def earliest_kept(engine: Any) -> dict[str, Any]:
    """From when the trail holds records: ``records_from`` (the ``at`` of the first
    record with its body) and ``pruned`` (the last pruned record, when any)."""
    with engine.connect() as conn:
        latest = _latest_prune(conn)
        pruned_to = _pruned_to(conn)
        row = conn.execute(select(r.c.seq, r.c.at).where(r.c.seq > pruned_to, r.c.body != "")
                           .order_by(r.c.seq).limit(1)).first()
    return {"records_from": row.at if row else None,
            "pruned_to": pruned_to or None,
            "pruned_on": latest[1].get("at") if latest and pruned_to else None}


# -- redaction --------------------------------------------------------------------------


def redaction_errors(seq: Any, field: Any, reason: Any) -> dict[str, str]:
    """What is wrong with a redaction request, before the trail is read."""
    errors: dict[str, str] = {}
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        errors["record"] = "Give the record's number (a whole number, 1 or more)."
    if field not in SEALED_FIELDS:
        errors["field"] = f"Give the field to redact: one of {', '.join(SEALED_FIELDS)}."
    if not isinstance(reason, str) or not reason.strip():
        errors["reason"] = "Give the reason for the redaction."
    elif len(reason) > REASON_MAX:
        errors["reason"] = f"The reason is at most {REASON_MAX} characters."
    elif any(ord(c) < 32 for c in reason):
        errors["reason"] = "The reason is one line of text."
    return errors


def _redaction_of(conn: Connection, seq: int, field: str) -> int | None:
    for row in conn.execute(select(r.c.seq, r.c.body).where(
            r.c.event == AUDIT_REDACTED, r.c.seq > seq, r.c.body != "")):
        body = json.loads(row.body)
        if body.get("record") == seq and body.get("field") == field:
            return int(row.seq)
    return None


def redact(trail: Any, seq: Any, field: Any, reason: Any, actor: Mapping[str, Any]
           ) -> dict[str, Any]:
    """Redact one sealed free text field of record ``seq``; ``RetentionError`` names
    what is wrong. Returns the record, the field and the audit.redacted record."""
    errors = redaction_errors(seq, field, reason)
    if errors:
        raise RetentionError(errors)
    with trail.engine.connect() as conn:
        row = conn.execute(select(r.c.body, r.c.texts).where(r.c.seq == seq)).first()
        if row is None:
            raise RetentionError({"record": f"There is no record {seq}."})
        if row.body == "":
            raise RetentionError({"record": f"Record {seq} was pruned: its text is gone."})
        sealed = json.loads(row.body).get("sealed") or {}
        texts = json.loads(row.texts) if row.texts else {}
        if not sealed:
            raise RetentionError({"field": (
                f"Record {seq} was written before free text was sealed (record format 1) "
                "or holds none: its text can go only with the whole record, by pruning.")})
        if field not in sealed:
            raise RetentionError({"field": f"Record {seq} holds no {field}; it holds "
                                           f"{', '.join(sorted(sealed))}."})
        done = (texts.get(field) or {}).get("redacted")
        if done is not None:
            raise RetentionError({"field": f"The {field} of record {seq} was redacted "
                                           f"already (record {done})."})
    reason = reason.strip()
    written = trail.append_unless(lambda c: _redaction_of(c, seq, field) is not None,
                                  AUDIT_REDACTED, **actor, record=seq, field=field,
                                  reason=reason)
    if written is not None:
        by = int(written["seq"])
    else:  # written before, the change cut off: finish it
        with trail.engine.connect() as conn:
            found = _redaction_of(conn, seq, field)
        assert found is not None
        by = found
    _mark(trail.engine, seq, field, by)
    return {"record": seq, "field": field, "redaction": by, "reason": reason}


def _mark(engine: Any, seq: int, field: str, by: int) -> None:
    if engine.dialect.name == "postgresql":
        statement = text("UPDATE audit_records SET texts = jsonb_set(texts::jsonb, "
                         "ARRAY[CAST(:field AS text)], jsonb_build_object('redacted', "
                         "CAST(:by AS bigint)))::text WHERE seq = :seq")
        params: dict[str, Any] = {"field": field, "by": by, "seq": seq}
    else:
        statement = text("UPDATE audit_records SET texts = json_set(texts, :path, "
                         "json_object('redacted', :by)) WHERE seq = :seq")
        params = {"path": f'$."{field}"', "by": by, "seq": seq}
    try:
        with engine.begin() as conn:
            conn.execute(statement, params)
    except DBAPIError as e:
        raise _refused(e, "the redaction") from e
