"""What the trail already says about a new lookup's actor and child (for flags).

Read in the append's transaction for every ``lookup.requested``, so it is on
every lookup's path: the statements are built once (bound parameters), the two
volume counts are one query, and no query reads more rows as the trail grows
beyond what a flag can use (``REPEAT_ROWS``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, case, func, select, tuple_

from federator.audit.flags import FlagLimits, History, hourly_counts
from federator.audit.folding import MATCHED_ROWS, REPEAT_ROWS, all_no_match, stamp
from federator.audit.tables import audit_child_refs as refs
from federator.names import LOOKUP_COMPLETED, LOOKUP_REQUESTED
from federator.storage import audit_records as r

#: The actor's lookups in the last day, newest first, at most ``cap`` of them: the
#: volume flags need to know only whether a limit is passed, so the cost stays the
#: same however many lookups a practitioner makes.
_DAY = (
    select(r.c.at.label("at"))
    .where(r.c.actor_id == bindparam("actor"), r.c.event == LOOKUP_REQUESTED,
           r.c.at >= bindparam("day"))
    .order_by(r.c.at.desc()).limit(bindparam("cap")).subquery()
)
_VOLUME = select(func.count(), func.coalesce(
    func.sum(case((_DAY.c.at >= bindparam("hour"), 1), else_=0)), 0)).select_from(_DAY)
#: The actor's lookups in the sustained-volume window, newest first, at most
#: ``cap``: the flag needs only each hour's count up to its threshold.
_SUSTAINED = (
    select(r.c.at)
    .where(r.c.actor_id == bindparam("actor"), r.c.event == LOOKUP_REQUESTED,
           r.c.at >= bindparam("since"))
    .order_by(r.c.at.desc()).limit(bindparam("cap"))
)
#: Newest first by ``at``, so the actor index ends the search after ``streak`` rows;
#: by ``seq`` the database walked every actor's completed records from the end of
#: the trail until it found this one's (the whole trail, for someone who had not
#: looked anyone up for a while). Appends are serialised, so ``at`` follows ``seq``
#: except across hosts whose clocks differ by more than the gap between records.
_RECENT_COMPLETED = (
    select(r.c.body)
    .where(r.c.actor_id == bindparam("actor"), r.c.event == LOOKUP_COMPLETED)
    .order_by(r.c.at.desc(), r.c.seq.desc()).limit(bindparam("streak"))
)
_CHILD_ORGANISATIONS = (
    select(r.c.actor_organisation).distinct()
    .where(r.c.child_pseudonym == bindparam("child"), r.c.event == LOOKUP_REQUESTED,
           r.c.at >= bindparam("since"))
)
_ACTOR_CHILD = select(func.count()).select_from(
    select(r.c.seq)
    .where(r.c.actor_id == bindparam("actor"), r.c.event == LOOKUP_REQUESTED,
           r.c.child_pseudonym == bindparam("child"), r.c.at >= bindparam("since"),
           # Retries (``follows``) finish an earlier lookup: they are not repeats.
           # Canonical JSON writes a top-level key as "follows": (inside a string
           # the quotes would be escaped), and only a retry has the key.
           r.c.body.not_like('%"follows":%'))
    .limit(REPEAT_ROWS).subquery())  # a count: no order needed, so no sort


#: The records an authority matched to one of the given records, newest first:
#: read through the references' own index (authority, reference, seq), so the cost
#: follows the child's lookups, never the practitioner's history; then those of
#: this actor in the window (retries aside), by primary key. Two statements: as
#: one, SQLite's planner walks the actor's day through the actor index instead.
_MATCHED_SEQS = (
    select(refs.c.seq)
    .where(tuple_(refs.c.authority_id, refs.c.record_ref).in_(
        bindparam("pairs", expanding=True)))
    .order_by(refs.c.seq.desc()).limit(bindparam("rows"))
)
_MATCHED_CHILD = (
    select(r.c.lookup_id)
    .where(r.c.seq.in_(bindparam("seqs", expanding=True)),
           r.c.actor_id == bindparam("actor"), r.c.event == LOOKUP_COMPLETED,
           r.c.at >= bindparam("since"), r.c.body.not_like('%"follows":%'))
    .limit(REPEAT_ROWS)
)
_TYPED_CHILD = (
    select(r.c.lookup_id)
    .where(r.c.actor_id == bindparam("actor"), r.c.event == LOOKUP_COMPLETED,
           r.c.child_pseudonym == bindparam("child"), r.c.at >= bindparam("since"),
           r.c.body.not_like('%"follows":%'))
    .limit(REPEAT_ROWS)
)


def load_history(conn: Connection, record: Mapping[str, Any], limits: FlagLimits) -> History:
    now = datetime.fromisoformat(record["at"])
    actor = record.get("actor_id")
    child = record.get("child_pseudonym")
    hour = day = 0
    recent: list[bool] = []
    if actor:
        day, hour = conn.execute(_VOLUME, {
            "actor": actor, "hour": stamp(now - timedelta(hours=1)),
            "day": stamp(now - timedelta(days=1)),
            # one past either limit is enough to raise its flag
            "cap": max(limits.per_day, limits.per_hour) + 1}).one()
        if limits.no_match_streak:
            for body in conn.execute(_RECENT_COMPLETED, {
                    "actor": actor, "streak": limits.no_match_streak}).scalars():
                recent.append(all_no_match(body))
    hourly: list[int] = []
    if actor and limits.sustained_hours and hour >= limits.sustained_per_hour - 1:
        hourly = hourly_counts([datetime.fromisoformat(a) for a in conn.execute(_SUSTAINED, {
            "actor": actor, "since": stamp(now - timedelta(hours=limits.sustained_hours)),
            # a busy hour's rows past the threshold change nothing but the cost
            "cap": limits.sustained_hours * limits.sustained_per_hour * 10}).scalars()],
            now, limits.sustained_hours)
    organisations: frozenset[str] = frozenset()
    if child:
        organisations = frozenset(o for o in conn.execute(_CHILD_ORGANISATIONS, {
            "child": child, "since": stamp(now - limits.child_window)}).scalars() if o)
    repeats = 0
    if actor and child and limits.repeat_lookups:
        repeats = conn.execute(_ACTOR_CHILD, {
            "actor": actor, "child": child,
            "since": stamp(now - limits.repeat_window)}).scalar_one()
    return History(actor_lookups_last_hour=int(hour), actor_lookups_last_day=int(day),
                   actor_recent_all_no_match=tuple(recent), child_organisations=organisations,
                   actor_child_lookups=repeats, actor_hourly=tuple(hourly))


def matched_history(conn: Connection, record: Mapping[str, Any],
                    refs_: Sequence[tuple[str, str]], limits: FlagLimits) -> tuple[int, int]:
    """For a ``lookup.completed`` whose authorities matched records: this actor's
    earlier lookups of the same child in the repeat window, (recorded under the
    same pseudonym, found by pseudonym or by an authority's match)."""
    typed, linked = matched_lookups(conn, record, refs_, limits)
    return len(typed), len(typed | linked)


def matched_lookups(conn: Connection, record: Mapping[str, Any],
                    refs_: Sequence[tuple[str, str]], limits: FlagLimits,
                    rows: int = MATCHED_ROWS) -> tuple[set[str], set[str]]:
    """The lookups ``matched_history`` counts: those typed with the same child,
    and those linked to it by the newest ``rows`` of the authorities' references."""
    actor, child = record.get("actor_id"), record.get("child_pseudonym")
    if not (actor and refs_ and limits.repeat_lookups) or record.get("follows"):
        return set(), set()
    since = stamp(datetime.fromisoformat(record["at"]) - limits.repeat_window)
    typed = set(conn.execute(_TYPED_CHILD, {"actor": actor, "child": child,
                                            "since": since}).scalars())
    seqs = list(conn.execute(_MATCHED_SEQS, {"pairs": [tuple(p) for p in refs_],
                                             "rows": rows}).scalars()) if rows else []
    linked = set(conn.execute(_MATCHED_CHILD, {
        "actor": actor, "since": since, "seqs": seqs}).scalars()) if seqs else set()
    return typed, linked
