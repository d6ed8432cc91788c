"""Audit flags: which recorded lookups an auditor should look at, and why.

Pure functions. ``lookup_flags`` sees the new ``lookup.requested`` record and
a summary of what the trail already holds (``History``, read by
``federator.audit.history`` in the same transaction as the append), and
returns each flag with a reason an auditor can read.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

FLAGS = ("safeguarding_basis", "scope_all", "volume_hour", "volume_day", "out_of_hours",
         "no_match_streak", "child_many_organisations", "own_family_name", "repeat_lookups",
         "sustained_volume", "budget_reached", "areas_widened", "entry_rejected")
#: Flags that also raise an alert on every auditor page (``federator.audit.alerts``).
ALERTS = ("sustained_volume", "budget_reached", "entry_rejected")

_HOURS = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")


@dataclass(frozen=True)
class FlagLimits:
    per_hour: int = 20
    per_day: int = 80
    office_start: time = time(8, 0)
    office_end: time = time(18, 0)
    timezone: str = "Europe/London"
    no_match_streak: int = 10
    child_organisations: int = 3
    child_window: timedelta = timedelta(hours=72)
    #: More than this many lookups of one child by one practitioner within
    #: ``repeat_window`` (retries, which carry ``follows``, are not counted).
    repeat_lookups: int = 3
    repeat_window: timedelta = timedelta(hours=24)
    #: ``sustained_volume``: at least ``sustained_per_hour`` lookups in each of the
    #: last ``sustained_hours`` hours (0 hours: never).
    sustained_hours: int = 3
    sustained_per_hour: int = 8

    @classmethod
    def parse(cls, *, per_hour: int, per_day: int, office_hours: str, timezone: str,
              no_match_streak: int, child_organisations: int, child_window_hours: int,
              repeat_lookups: int = 3, repeat_window_hours: int = 24,
              sustained_hours: int = 3, sustained_per_hour: int = 8) -> FlagLimits:
        """From settings; ValueError names the setting that is wrong."""
        match = _HOURS.match(office_hours.strip())
        if not match:
            raise ValueError("FEDERATOR_AUDIT_OFFICE_HOURS must look like 08:00-18:00")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        try:
            start, end = time(h1, m1), time(h2, m2)
        except ValueError as e:
            raise ValueError("FEDERATOR_AUDIT_OFFICE_HOURS has an impossible time") from e
        if start >= end:
            raise ValueError("FEDERATOR_AUDIT_OFFICE_HOURS must start before it ends")
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError("FEDERATOR_AUDIT_TIMEZONE is not a known time zone") from e
        return cls(per_hour=per_hour, per_day=per_day, office_start=start, office_end=end,
                   timezone=timezone, no_match_streak=no_match_streak,
                   child_organisations=child_organisations,
                   child_window=timedelta(hours=child_window_hours),
                   repeat_lookups=repeat_lookups,
                   repeat_window=timedelta(hours=repeat_window_hours),
                   sustained_hours=sustained_hours, sustained_per_hour=sustained_per_hour)


@dataclass(frozen=True)
class History:
    """What the trail held before this record, about its actor and its child."""

    actor_lookups_last_hour: int = 0
    actor_lookups_last_day: int = 0
    #: For the actor's most recent completed lookups, newest first: True when
    #: every authority asked answered ``no_match``.
    actor_recent_all_no_match: Sequence[bool] = ()
    #: Organisations that looked this child up within the window (before now).
    child_organisations: frozenset[str] = field(default_factory=frozenset)
    #: This actor's earlier lookups of this child within the repeat window
    #: (not counting retries).
    actor_child_lookups: int = 0
    #: The actor's lookups in each of the last ``sustained_hours`` hours before
    #: this one, the hour ending now first.
    actor_hourly: Sequence[int] = ()


def lookup_flags(record: Mapping[str, Any], history: History, limits: FlagLimits
                 ) -> list[dict[str, str]]:
    """Flags for one ``lookup.requested`` record, each ``{"flag", "reason"}``."""
    flags: list[dict[str, str]] = []

    def raise_(flag: str, reason: str) -> None:
        flags.append({"flag": flag, "reason": reason})

    basis = record.get("basis") or {}
    if basis.get("type") == "safeguarding":
        raise_("safeguarding_basis", "Safeguarding basis: consent was not sought.")
    if record.get("scope") == "all":
        raise_("scope_all", "Scope 'all': every registered authority was asked, "
               "not only those covering the child's areas.")
    hour = history.actor_lookups_last_hour + 1
    if hour > limits.per_hour:
        raise_("volume_hour", f"{hour} lookups by this practitioner within an hour "
               f"(limit {limits.per_hour}).")
    day = history.actor_lookups_last_day + 1
    if day > limits.per_day:
        raise_("volume_day", f"{day} lookups by this practitioner within a day "
               f"(limit {limits.per_day}).")
    at = record.get("at")
    if isinstance(at, str) and out_of_hours(datetime.fromisoformat(at), limits):
        local = datetime.fromisoformat(at).astimezone(ZoneInfo(limits.timezone))
        raise_("out_of_hours", f"Made at {local:%H:%M} on a {local:%A} ({limits.timezone}), "
               f"outside {limits.office_start:%H:%M}-{limits.office_end:%H:%M} "
               "Monday to Friday.")
    streak = no_match_run(history.actor_recent_all_no_match)
    if limits.no_match_streak and streak >= limits.no_match_streak:
        raise_("no_match_streak", f"The practitioner's last {streak} lookups found no "
               "authority that knew the child.")
    organisations = set(history.child_organisations)
    if record.get("actor_organisation"):
        organisations.add(str(record["actor_organisation"]))
    if len(organisations) >= limits.child_organisations:
        hours = int(limits.child_window.total_seconds() // 3600)
        raise_("child_many_organisations", f"This child was looked up by {len(organisations)} "
               f"organisations within {hours} hours.")
    repeats = history.actor_child_lookups + 1
    if (limits.repeat_lookups and not record.get("follows")
            and repeats > limits.repeat_lookups):
        hours = int(limits.repeat_window.total_seconds() // 3600)
        raise_("repeat_lookups", f"{repeats} lookups of this child by this practitioner "
               f"within {hours} hours (limit {limits.repeat_lookups}).")
    if sustained(history.actor_hourly, limits):
        raise_("sustained_volume", f"At least {limits.sustained_per_hour} lookups by this "
               f"practitioner in each of the last {limits.sustained_hours} hours.")
    areas_added = record.get("areas_added") or []
    if areas_added:
        raise_("areas_widened", f"{len(areas_added)} area(s) asked beyond those the "
               "child's postcodes give: " + ", ".join(map(str, areas_added)) + ".")
    return flags


def sustained(hourly: Sequence[int], limits: FlagLimits) -> bool:
    """Every one of the last ``sustained_hours`` hours (this lookup counted in the
    hour ending now) holds at least ``sustained_per_hour`` lookups."""
    hours = limits.sustained_hours
    if not hours or len(hourly) < hours:
        return False
    counts = [hourly[0] + 1, *hourly[1:hours]]
    return all(c >= limits.sustained_per_hour for c in counts)


def hourly_counts(ats: Sequence[datetime], now: datetime, hours: int) -> list[int]:
    """How many of ``ats`` fall in each of the ``hours`` hours before ``now``
    (index 0: the hour ending now)."""
    counts = [0] * hours
    for at in ats:
        index = int((now - at).total_seconds() // 3600)
        if 0 <= index < hours:
            counts[index] += 1
    return counts


def alert_flags(record: Mapping[str, Any]) -> list[str]:
    """The flags of ``record`` that raise an alert (``ALERTS``)."""
    return sorted({f["flag"] for f in record.get("flags") or []
                   if isinstance(f, Mapping) and f.get("flag") in ALERTS})


def budget_flag(scope: str, limit: str) -> dict[str, str]:
    """The flag on ``lookup.rate_limited``: who reached which budget."""
    whose = {"organisation": "The practitioner's organisation",
             "refused": "The practitioner's refused lookups"}.get(scope, "The practitioner")
    return {"flag": "budget_reached", "reason": f"{whose} reached the lookup limit "
            f"({limit}); further attempts in this window were refused without a record."}


def completion_flags(typed: int, linked: int, limits: FlagLimits) -> list[dict[str, str]]:
    """Flags for a ``lookup.completed`` from the actor's earlier lookups of the child
    (``history.matched_history``): ``repeat_lookups`` when the lookups the
    authorities matched to the same record pass the limit and those typed the same
    way did not (then ``lookup.requested`` carries the flag already)."""
    if not limits.repeat_lookups or linked + 1 <= limits.repeat_lookups \
            or typed + 1 > limits.repeat_lookups:
        return []
    hours = int(limits.repeat_window.total_seconds() // 3600)
    return [{"flag": "repeat_lookups", "reason": (
        f"{linked + 1} lookups of this child by this practitioner within {hours} hours "
        f"(limit {limits.repeat_lookups}), some typed with other details: the "
        "authorities matched them to the same record.")}]


OWN_FAMILY_NAME_REASON = ("The child's family name matches the practitioner's own "
                          "(compared without accents, case or hyphenation).")


PARTICLES = frozenset({"al", "ap", "bin", "da", "das", "de", "del", "della", "den", "der",
                       "di", "dos", "du", "el", "la", "le", "mac", "mc", "st", "van",
                       "von", "ter", "ten"})


def name_parts(name: str | None) -> frozenset[str]:
    """A family name's comparable parts: accents and case dropped, apostrophes
    removed, split at hyphens and spaces; 'Núñez-O'Brien' -> {'nunez', 'obrien',
    'nunezobrien'}. Single letters are not parts."""
    if not name:
        return frozenset()
    plain = "".join(c for c in unicodedata.normalize("NFKD", name)
                    if not unicodedata.combining(c)).casefold()
    plain = re.sub(r"[\'\u2019`.]", "", plain)
    parts = [p for p in re.split(r"[^a-z0-9]+", plain) if len(p) > 1]
    if len(parts) > 1:  # 'de Souza' and 'de Silva' share no family
        parts = [p for p in parts if p not in PARTICLES] or parts
    whole = "".join(parts)
    return frozenset([*parts, whole] if whole else parts)


def practitioner_family_name(family_name: str | None, name: str | None) -> str:
    """The token's ``family_name`` claim, else the last word of ``name``."""
    if family_name and family_name.strip():
        return family_name.strip()
    words = (name or "").split()
    return words[-1] if words else ""


def own_family_name_flag(child_family_name: str | None, practitioner_family: str | None
                         ) -> dict[str, str] | None:
    """The ``own_family_name`` flag (no names in it), or None."""
    if name_parts(child_family_name) & name_parts(practitioner_family):
        return {"flag": "own_family_name", "reason": OWN_FAMILY_NAME_REASON}
    return None


def out_of_hours(at: datetime, limits: FlagLimits) -> bool:
    local = at.astimezone(ZoneInfo(limits.timezone))
    if local.weekday() >= 5:
        return True
    return not limits.office_start <= local.time() < limits.office_end


def no_match_run(recent: Sequence[bool]) -> int:
    """How many of the newest entries in a row are True."""
    run = 0
    for all_no_match in recent:
        if not all_no_match:
            break
        run += 1
    return run
