"""Patterns over time in the lookups (pure): counts a day, by flag, by
organisation, by hour of the day, and the share made out of hours, from what
``federator.audit.case_queries.activity`` reads (no record bodies needed)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from federator.audit.flags import FlagLimits, out_of_hours


@dataclass(frozen=True)
class Activity:
    """One head record (a lookup, a refusal or a rate limit) and its flags."""

    seq: int
    at: datetime  # aware
    kind: str  # lookup, refused, rate_limited (``casework.HEADS``)
    organisation: str
    actor_id: str
    flags: frozenset[str] = field(default_factory=frozenset)


def days(start: date, end: date) -> list[date]:
    """Every day from ``start`` to ``end``, both included."""
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def per_day(items: Iterable[Activity], start: date, end: date, zone: str
            ) -> list[tuple[date, int]]:
    """Lookups (of every kind) on each local day, none left out."""
    tz = ZoneInfo(zone)
    counted = Counter(a.at.astimezone(tz).date() for a in items)
    return [(day, counted.get(day, 0)) for day in days(start, end)]


def flag_counts(items: Iterable[Activity]) -> list[tuple[str, int]]:
    """How many lookups raised each flag, most first (ties by name)."""
    counted = Counter(flag for a in items for flag in a.flags)
    return sorted(counted.items(), key=lambda pair: (-pair[1], pair[0]))


@dataclass(frozen=True)
class OrganisationCount:
    organisation: str
    lookups: int
    flagged: int


def by_organisation(items: Iterable[Activity]) -> list[OrganisationCount]:
    """Lookups and flagged lookups by the asking organisation, most flagged first."""
    lookups: Counter[str] = Counter()
    flagged: Counter[str] = Counter()
    for a in items:
        name = a.organisation or "Not recorded"
        lookups[name] += 1
        flagged[name] += bool(a.flags)
    return sorted((OrganisationCount(o, lookups[o], flagged[o]) for o in lookups),
                  key=lambda c: (-c.flagged, -c.lookups, c.organisation))


@dataclass(frozen=True)
class Share:
    label: str  # the week: "w/c 2 Nov"
    total: int
    part: int

    @property
    def percent(self) -> int:
        return round(100 * self.part / self.total) if self.total else 0


def out_of_hours_by_week(items: Iterable[Activity], start: date, end: date,
                         limits: FlagLimits) -> list[Share]:
    """Each week's (Monday to Sunday, local) lookups and those out of hours."""
    tz = ZoneInfo(limits.timezone)
    first = start - timedelta(days=start.weekday())
    weeks = [first + timedelta(weeks=n) for n in range((end - first).days // 7 + 1)]
    total: Counter[date] = Counter()
    part: Counter[date] = Counter()
    for a in items:
        local = a.at.astimezone(tz).date()
        week = local - timedelta(days=local.weekday())
        total[week] += 1
        part[week] += out_of_hours(a.at, limits)
    return [Share(f"w/c {w.day} {w:%b}", total[w], part[w]) for w in weeks]


def overall_share(shares: Sequence[Share]) -> Share:
    return Share("all", sum(s.total for s in shares), sum(s.part for s in shares))


def per_hour(items: Iterable[Activity], zone: str) -> list[tuple[str, int]]:
    """Lookups by local hour of the day, 00 to 23."""
    tz = ZoneInfo(zone)
    counted = Counter(a.at.astimezone(tz).hour for a in items)
    return [(f"{hour:02d}", counted.get(hour, 0)) for hour in range(24)]
