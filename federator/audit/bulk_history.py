"""The flag history (``federator.audit.history.load_history``) of many new
``lookup.requested`` records in one statement, for a batch of queued entries.

PostgreSQL: one row per record, each of ``load_history``'s queries as a lateral
subquery over the records given as arrays (one statement text for any batch
size, so it is prepared once). Each actor's rows are ordered as the
actor index (actor, event, at) holds them (the same order, given the actor and
event): ordered by ``at`` alone, the planner may walk the time index backwards
through every practitioner's records, filtering. A practitioner's repeats of a
child are read through the child's index: the actor index would walk the
practitioner's whole day, filtering by child (``actor_id || ''`` keeps the
planner off it; a child has few lookups, a busy practitioner hundreds a day).
Same rows, limits and order as
``load_history``, which stays the definition (a test compares them on random
trails). What comes back is each read's rows as capped (``folding.Stored``), so
a batch's own earlier records can be folded in (``folding.Batch``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text

from federator.audit.flags import FlagLimits, History
from federator.audit.folding import REPEAT_ROWS, Batch, Stored, all_no_match, stamp
from federator.audit.history import load_history

_BULK = text("""
SELECT v.i, vol.day, vol.hour, recent.bodies, recent.ats, recent.seqs, orgs.list, rep.n,
       sus.ats AS sustained
FROM unnest(CAST(:i AS int[]), CAST(:actor AS text[]), CAST(:child AS text[]),
            CAST(:now AS text[]), CAST(:hour AS text[]), CAST(:day AS text[]),
            CAST(:child_since AS text[]), CAST(:repeat_since AS text[]),
            CAST(:sustained_since AS text[]))
     AS v(i, actor, child, now, hour, day, child_since, repeat_since, sustained_since)
LEFT JOIN LATERAL (
    SELECT (SELECT count(*) FROM (SELECT 1 FROM audit_records r
            WHERE r.actor_id = v.actor AND r.event = 'lookup.requested' AND r.at >= v.day
            LIMIT :cap) d) AS day,
           (SELECT count(*) FROM (SELECT 1 FROM audit_records r
            WHERE r.actor_id = v.actor AND r.event = 'lookup.requested' AND r.at >= v.hour
            LIMIT :cap) h) AS hour) vol ON true
LEFT JOIN LATERAL (
    SELECT array_agg(c.body ORDER BY c.at DESC, c.seq DESC) AS bodies,
           array_agg(c.at ORDER BY c.at DESC, c.seq DESC) AS ats,
           array_agg(c.seq ORDER BY c.at DESC, c.seq DESC) AS seqs
    FROM (SELECT r.body, r.at, r.seq FROM audit_records r
          WHERE r.actor_id = v.actor AND r.event = 'lookup.completed'
          ORDER BY r.actor_id DESC, r.event DESC, r.at DESC, r.seq DESC LIMIT :streak) c
    ) recent ON true
LEFT JOIN LATERAL (
    SELECT array_agg(DISTINCT r.actor_organisation) AS list FROM audit_records r
    WHERE r.child_pseudonym = v.child AND r.event = 'lookup.requested'
      AND r.at >= v.child_since) orgs ON true
LEFT JOIN LATERAL (
    SELECT count(*) AS n
    FROM (SELECT r.seq FROM audit_records r
          WHERE r.child_pseudonym = v.child AND r.event = 'lookup.requested'
            AND r.actor_id || '' = v.actor AND r.at >= v.repeat_since
            AND r.body NOT LIKE '%"follows":%'
          LIMIT :repeat_rows) a) rep ON true
LEFT JOIN LATERAL (
    SELECT array_agg(s.at ORDER BY s.at DESC) AS ats
    FROM (SELECT r.at FROM audit_records r
          WHERE r.actor_id = v.actor AND r.event = 'lookup.requested'
            AND r.at >= v.sustained_since
          ORDER BY r.actor_id DESC, r.event DESC, r.at DESC LIMIT :sustained_cap) s) sus ON true
""")


def stored_histories(conn: Connection, records: Sequence[Mapping[str, Any]],
                     limits: FlagLimits) -> list[Stored]:
    """PostgreSQL: what the trail holds, as it stands, for each of ``records``
    (``lookup.requested``, none of them written yet), for ``folding.Batch.history``."""
    nows = [datetime.fromisoformat(r["at"]) for r in records]
    hours = limits.sustained_hours
    params: dict[str, Any] = {
        "i": list(range(len(records))),
        "actor": [r.get("actor_id") or None for r in records],
        "child": [r.get("child_pseudonym") or None for r in records],
        "now": [r["at"] for r in records],
        "hour": [stamp(n - timedelta(hours=1)) for n in nows],
        "day": [stamp(n - timedelta(days=1)) for n in nows],
        "child_since": [stamp(n - limits.child_window) for n in nows],
        "repeat_since": [stamp(n - limits.repeat_window) for n in nows],
        "sustained_since": [stamp(n - timedelta(hours=hours)) for n in nows],
        "cap": max(limits.per_day, limits.per_hour) + 1,
        "streak": limits.no_match_streak,
        "repeat_rows": REPEAT_ROWS,
        "sustained_cap": hours * limits.sustained_per_hour * 10}
    rows = {row.i: row for row in conn.execute(_BULK, params)} if records else {}
    return [_stored(rows[i]) for i in range(len(records))]


def load_histories(conn: Connection, records: Sequence[Mapping[str, Any]],
                   limits: FlagLimits) -> list[History]:
    """``load_history(conn, record, limits)`` for each of ``records``, as the
    trail stands (none of them written yet): on PostgreSQL in one statement."""
    if conn.dialect.name != "postgresql":
        return [load_history(conn, r, limits) for r in records]
    return [Batch().history(r, s, limits)
            for r, s in zip(records, stored_histories(conn, records, limits), strict=True)]


def _stored(row: Any) -> Stored:
    return Stored(
        day=int(row.day or 0), hour=int(row.hour or 0),
        recent=tuple((str(at), int(seq), all_no_match(body))
                     for at, seq, body in zip(row.ats or (), row.seqs or (), row.bodies or (),
                                              strict=True)),
        organisations=frozenset(o for o in row.list or () if o), repeats=int(row.n or 0),
        sustained=tuple(row.sustained or ()))
