"""The flag history of a batch's records: the trail as it stood before the batch,
read once for the whole batch, with the batch's own earlier records folded in.

``federator.audit.batching`` integrates a batch of queued entries in one pass:
the history of every ``lookup.requested`` in it is read in one statement
(``bulk_history``) and the repeats of every matched ``lookup.completed`` from
the trail as it stood before the batch, and ``Batch`` adds what the batch's
earlier records would have added had each been appended, and read back, one by
one. So each record gets the flags ``history.load_history`` and
``history.matched_history`` give it on a trail holding every record before it,
caps included: each read keeps at most so many rows (the newest, or a count),
and the same cap is applied here to the rows as stored plus the batch's.

Pure: no database, no clock. Records' ``at`` are compared as text, as the
queries compare them (the trail's one format orders by time).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from federator.audit.appending import Sealed
from federator.audit.flags import FlagLimits, History
from federator.names import LOOKUP_COMPLETED, LOOKUP_REQUESTED

#: At most this many of an actor's recent lookups of one child are counted
#: (``history.REPEAT_ROWS``, kept here so this module reads no database code).
REPEAT_ROWS = 100
#: At most this many of a matched child's most recent references are looked
#: through (``history.MATCHED_ROWS``).
MATCHED_ROWS = 1000


def stamp(at: datetime) -> str:
    """The trail's ``at`` format, so text comparison orders by time."""
    return at.isoformat(timespec="milliseconds")


def all_no_match(body: str) -> bool:
    """Whether a ``lookup.completed`` body says every authority asked answered ``no_match``.

    Read from the canonical JSON's text, not parsed: this runs on every lookup for
    the last few records, whose outcome lists hold up to 150 authorities. Canonical
    JSON writes each outcome as ``"outcome":"<value>"``; in any string value the
    quotes would be escaped, so the pattern can only be an outcome field."""
    outcomes = body.count('"outcome":"')
    return outcomes > 0 and outcomes == body.count('"outcome":"no_match"')


def is_retry(body: str) -> bool:
    """As the history's queries tell a retry (``body NOT LIKE '%"follows":%'``):
    canonical JSON writes a key as ``"follows":``, and only a retry has it."""
    return '"follows":' in body


@dataclass(frozen=True)
class Stored:
    """What the trail held, before the batch, for one new ``lookup.requested``
    (``bulk_history``), each read capped as ``load_history`` caps it."""

    #: The actor's lookups in the last day and hour (each at most the cap).
    day: int = 0
    hour: int = 0
    #: The actor's most recent completions, newest first: (at, seq, all no_match).
    recent: tuple[tuple[str, int, bool], ...] = ()
    organisations: frozenset[str] = frozenset()
    repeats: int = 0
    #: The times of the actor's lookups in the sustained-volume window, newest
    #: first, as many as the read keeps.
    sustained: tuple[str, ...] = ()


class Earlier(NamedTuple):
    """A record of the batch already flagged and sealed, as the history reads it."""

    seq: int
    at: str
    event: str
    actor: str | None
    child: str | None
    organisation: str | None
    lookup_id: str | None
    retry: bool
    no_match: bool
    refs: frozenset[tuple[str, str]]


class Batch:
    """The batch's records so far, indexed as the history's queries read them:
    each index sorted as the trail's index is (by ``at``, as text), so a count
    over a window is two bisections, however many lookups a busy practitioner
    has in the batch."""

    def __init__(self) -> None:
        #: ``lookup.requested`` times: by actor; by actor and child, retries aside
        self._requested: dict[str, list[str]] = defaultdict(list)
        self._repeats: dict[tuple[str, str], list[str]] = defaultdict(list)
        #: the child's organisations, each with its latest request's time
        self._organisations: dict[str, dict[str, str]] = defaultdict(dict)
        #: ``lookup.completed``: by actor (at, seq, all no_match); by actor and
        #: child, retries aside (at, lookup id); those that matched, by reference
        self._completed: dict[str, list[tuple[str, int, bool]]] = defaultdict(list)
        self._typed: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
        self._by_ref: dict[tuple[str, str], list[Earlier]] = defaultdict(list)

    def add(self, done: Sealed) -> None:
        row = done.row
        if row["event"] not in (LOOKUP_REQUESTED, LOOKUP_COMPLETED):
            return
        body = str(row["body"])
        e = Earlier(
            seq=int(row["seq"]), at=str(row["at"]), event=str(row["event"]),
            actor=row.get("actor_id"), child=row.get("child_pseudonym"),
            organisation=row.get("actor_organisation"), lookup_id=row.get("lookup_id"),
            retry=is_retry(body),
            no_match=row["event"] == LOOKUP_COMPLETED and all_no_match(body),
            refs=frozenset((r["authority_id"], r["record_ref"]) for r in done.refs))
        if e.event == LOOKUP_REQUESTED:
            if e.actor is not None:
                insort(self._requested[e.actor], e.at)
                if e.child is not None and not e.retry:
                    insort(self._repeats[e.actor, e.child], e.at)
            if e.child is not None and e.organisation:
                latest = self._organisations[e.child]
                latest[e.organisation] = max(e.at, latest.get(e.organisation, e.at))
            return
        if e.actor is not None:
            insort(self._completed[e.actor], (e.at, e.seq, e.no_match))
            if e.child is not None and not e.retry and e.lookup_id:
                insort(self._typed[e.actor, e.child], (e.at, e.lookup_id))
        for ref in e.refs:
            self._by_ref[ref].append(e)

    def history(self, record: Mapping[str, Any], stored: Stored, limits: FlagLimits
                ) -> History:
        """``load_history`` of ``record`` on the trail plus this batch so far."""
        now = datetime.fromisoformat(record["at"])
        actor, child = record.get("actor_id"), record.get("child_pseudonym")
        hour = day = 0
        recent: tuple[bool, ...] = ()
        mine = self._requested.get(actor, []) if actor else []
        if actor:
            cap = max(limits.per_day, limits.per_hour) + 1
            # The hour's rows are the newest of the day's: capping the day's rows
            # keeps min(cap, hour's) of them.
            day = min(cap, stored.day + _since(mine, now - timedelta(days=1)))
            hour = min(cap, stored.hour + _since(mine, now - timedelta(hours=1)))
            if limits.no_match_streak:
                streak = limits.no_match_streak
                rows = [*stored.recent, *self._completed.get(actor, [])[-streak:]]
                rows.sort(key=lambda r: (r[0], r[1]), reverse=True)
                recent = tuple(r[2] for r in rows[:streak])
        hourly: tuple[int, ...] = ()
        hours = limits.sustained_hours
        if actor and hours and hour >= limits.sustained_per_hour - 1:
            hourly = _hourly(stored.sustained, mine, now, hours,
                             cap=hours * limits.sustained_per_hour * 10)
        organisations = stored.organisations if child else frozenset()
        if child:
            since = stamp(now - limits.child_window)
            organisations |= {o for o, latest in self._organisations.get(child, {}).items()
                              if latest >= since}
        repeats = 0
        if actor and child and limits.repeat_lookups:
            repeats = min(REPEAT_ROWS, stored.repeats + _since(
                self._repeats.get((actor, child), []), now - limits.repeat_window))
        return History(actor_lookups_last_hour=hour, actor_lookups_last_day=day,
                       actor_recent_all_no_match=recent, child_organisations=organisations,
                       actor_child_lookups=repeats, actor_hourly=hourly)

    def matched(self, record: Mapping[str, Any], refs: Sequence[tuple[str, str]],
                stored: tuple[set[str], set[str]], limits: FlagLimits) -> tuple[int, int]:
        """``matched_history`` of a completion on the trail plus this batch so far:
        ``stored`` is what the trail held before the batch, the typed and the
        linked lookups (``history.matched_lookups`` with ``rows=stored_rows(refs)``)."""
        actor, child = record.get("actor_id"), record.get("child_pseudonym")
        if not (actor and refs and limits.repeat_lookups) or record.get("follows"):
            return 0, 0
        since = stamp(datetime.fromisoformat(record["at"]) - limits.repeat_window)
        typed, linked = set(stored[0]), set(stored[1])
        rows = self._typed.get((actor, child), [])
        typed |= {lookup for _, lookup in rows[bisect_left(rows, (since, "")):]}
        for e in self._newest_with(refs):
            if e.actor == actor and e.at >= since and not e.retry and e.lookup_id:
                linked.add(e.lookup_id)
        typed_ = set(sorted(typed)[:REPEAT_ROWS])
        return len(typed_), len(typed_ | set(sorted(linked)[:REPEAT_ROWS]))

    def stored_rows(self, refs: Sequence[tuple[str, str]]) -> int:
        """How many of the newest ``MATCHED_ROWS`` references to ``refs`` to read
        from the trail: those the batch's own (newer) references leave."""
        return max(0, MATCHED_ROWS - sum(len(self._by_ref.get(tuple(r), []))
                                         for r in set(map(tuple, refs))))

    def _newest_with(self, refs: Sequence[tuple[str, str]]) -> list[Earlier]:
        """The batch's completions among the newest ``MATCHED_ROWS`` references
        to ``refs`` (a record is among them if any of its references is)."""
        wanted = frozenset(map(tuple, refs))
        shared = Counter(e.seq for r in wanted for e in self._by_ref.get(r, []))
        records = {e.seq: e for r in wanted for e in self._by_ref.get(r, [])}
        left, found = MATCHED_ROWS, []
        for seq in sorted(shared, reverse=True):
            if left <= 0:
                break
            found.append(records[seq])
            left -= shared[seq]
        return found


def _since(ats: Sequence[str], since: datetime) -> int:
    """How many of ``ats`` (sorted) are at or after ``since``."""
    return len(ats) - bisect_left(ats, stamp(since))


def _hourly(stored: Sequence[str], mine: Sequence[str], now: datetime, hours: int,
            cap: int) -> tuple[int, ...]:
    """``flags.hourly_counts`` of the newest ``cap`` of the actor's lookups in the
    sustained-volume window: those the trail's read kept and the batch's (``mine``,
    sorted). Hour k back from ``now`` holds the times in (now - (k+1) h, now - k h],
    the window starts at ``now - hours`` h; times after ``now`` (another host's
    clock) are the newest, and in no hour."""
    since = stamp(now - timedelta(hours=hours))
    kept = sorted([*stored, *mine[bisect_left(mine, since):]])[-cap:] if cap > 0 else []
    bounds = [stamp(now - timedelta(hours=k)) for k in range(hours + 1)]
    return tuple(bisect_right(kept, bounds[k]) - bisect_right(kept, bounds[k + 1])
                 for k in range(hours))
