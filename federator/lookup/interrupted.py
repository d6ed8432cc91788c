"""Lookups cut off by a crash: ``lookup.requested`` written, the question sent,
and no ``lookup.completed`` because the process died first.

Such a lookup is closed by a ``lookup.interrupted`` record naming the
authorities that may have received the child's identity (those asked), at the
broker's next start-up (:func:`close_interrupted`) or when a retry or a receipt
finds it (:func:`close_one`). Then it can be retried.

Several broker processes share one trail, so a lookup another process is still
answering must not be closed: only a lookup older than the longest deadline
plus a margin is (it would have completed by then), and the record is written
at most once per lookup, checked while holding the trail's head
(``AuditTrail.append_unless``), so two processes starting at once write one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.exc import SQLAlchemyError

from federator.audit.trail import AuditTrail, AuditUnavailable
from federator.names import LOOKUP_COMPLETED, LOOKUP_INTERRUPTED, LOOKUP_REQUESTED
from federator.storage import audit_records as r

log = logging.getLogger(__name__)

#: Seconds past a lookup's deadline before it counts as cut off: the completion's
#: write (retried for a few seconds when the trail is busy) and clocks of the
#: broker hosts that differ by less than this.
MARGIN_S = 60
#: How far back the start-up check reads: a lookup cut off longer ago (a broker
#: down for longer) is closed when its receipt or retry finds it. Reading costs
#: about 1.4 s (SQLite) and 8 s (PostgreSQL) per 100,000 lookups
#: (benchmarks/interrupted.py).
SCAN_HORIZON = timedelta(days=7)
REASON = "no lookup.completed: the broker stopped before the lookup finished"
#: What a lookup's ending is recorded as, either way.
ENDINGS = (LOOKUP_COMPLETED, LOOKUP_INTERRUPTED)
#: Copied from ``lookup.requested`` so the record is found where the lookup is
#: (by lookup id, actor, child pseudonym, basis).
COPIED = ("lookup_id", "actor_id", "actor_role", "actor_organisation", "child_pseudonym",
          "basis_type", "follows")


def interrupted_after_s(deadline_max_ms: int) -> float:
    """How old a lookup without a completion must be to be closed as interrupted."""
    return deadline_max_ms / 1000 + MARGIN_S


def is_cut_off(requested: Mapping[str, Any], *, now: datetime, after_s: float) -> bool:
    """Old enough that no process can still be answering it: past ``after_s``, and
    past its own deadline and the margin (a deadline longer than today's maximum)."""
    at = datetime.fromisoformat(str(requested["at"]))
    own_s = _number(requested.get("deadline_ms")) / 1000 + MARGIN_S
    return now - at > timedelta(seconds=max(after_s, own_s))


def interrupted_fields(requested: Mapping[str, Any]) -> dict[str, Any]:
    """``lookup.interrupted``: which lookup, and the authorities that may have
    received the child's identity (those asked; never those not asked)."""
    fields = {k: requested[k] for k in COPIED if requested.get(k) is not None}
    fields["requested_seq"] = requested["seq"]
    fields["authorities"] = [a for a in requested.get("authorities") or []
                             if isinstance(a, str)]
    fields["reason"] = REASON
    return fields


def ended(lookup_id: str) -> Callable[[Connection], bool]:
    """Whether the lookup already has its completion or its interruption."""
    def check(conn: Connection) -> bool:
        return conn.execute(select(r.c.seq).where(
            r.c.lookup_id == lookup_id, r.c.event.in_(ENDINGS)).limit(1)).first() is not None
    return check


def close_one(trail: AuditTrail, requested: Mapping[str, Any]) -> dict[str, Any] | None:
    """Write the lookup's ``lookup.interrupted`` unless it has ended: the record,
    or None when another process closed it or its completion is there."""
    return trail.append_unless(ended(str(requested["lookup_id"])), LOOKUP_INTERRUPTED,
                               **interrupted_fields(requested))


def cut_off(trail: AuditTrail, *, now: datetime, after_s: float, first_seq: int,
            last_seq: int) -> list[dict[str, Any]]:
    """The ``lookup.requested`` records among ``first_seq..last_seq`` older than
    ``after_s`` with no ending anywhere in the trail, oldest first.

    Plain lookups on the primary key and the lookup_id index, filtered here,
    not an anti-join: its plan depends on fresh table statistics (measured on
    PostgreSQL: 22 s for 20,000 lookups without them, 40 ms with), and an
    indexed ``event`` filter makes each page scan that whole index."""
    before = (now - timedelta(seconds=after_s)).astimezone(UTC).isoformat(
        timespec="milliseconds")
    with trail.engine.connect() as conn:
        page = [row for row in conn.execute(
            select(r.c.seq, r.c.event, r.c.lookup_id, r.c.at).where(
                r.c.seq >= first_seq, r.c.seq <= last_seq))
            if row.event == LOOKUP_REQUESTED and row.lookup_id and row.at < before]
        if not page:
            return []
        ended = {row.lookup_id for row in conn.execute(
            select(r.c.lookup_id, r.c.event).where(
                r.c.lookup_id.in_([row.lookup_id for row in page])))
            if row.event in ENDINGS}
        seqs = [row.seq for row in page if row.lookup_id not in ended]
        bodies = conn.execute(select(r.c.body).where(r.c.seq.in_(seqs))
                              .order_by(r.c.seq)).scalars().all() if seqs else []
    return [json.loads(body) for body in bodies]


def close_interrupted(trail: AuditTrail, *, after_s: float,
                      now: Callable[[], datetime] = lambda: datetime.now(UTC),
                      batch: int = 2000, horizon: timedelta = SCAN_HORIZON) -> int:
    """Close every lookup cut off by a crash in the last ``horizon`` (at start-up),
    reading the trail ``batch`` records at a time; how many this call closed."""
    since = (now() - horizon).astimezone(UTC).isoformat(timespec="milliseconds")
    trail.integrate_pending()  # entries queued by a broker that died before integrating them
    with trail.engine.connect() as conn:
        head = int(conn.execute(select(func.max(r.c.seq))).scalar() or 0)
        start = conn.execute(select(func.min(r.c.seq)).where(r.c.at >= since)).scalar()
    closed = 0
    for first in range(int(start or head + 1), head + 1, batch):
        page = cut_off(trail, now=now(), after_s=after_s, first_seq=first,
                       last_seq=first + batch - 1)
        closed += sum(close_one(trail, rec) is not None for rec in page
                      if is_cut_off(rec, now=now(), after_s=after_s))
    if closed:
        log.warning("closed %d lookups cut off before they completed", closed)
    return closed


def close_at_start(trail: AuditTrail, after_s: float) -> int:
    """:func:`close_interrupted` as the broker starts: a trail that cannot be read
    or written is logged, not fatal (lookups refuse until it is back; the next
    start, or the lookup's retry or receipt, closes them)."""
    try:
        return close_interrupted(trail, after_s=after_s)
    except (AuditUnavailable, SQLAlchemyError) as e:
        log.warning("lookups cut off by a crash not closed at start-up: %s", type(e).__name__)
        return 0


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
