"""Times as people in England read them: Europe/London, with the zone named.

The trail keeps UTC (ISO 8601); every page shows the local time with GMT or
BST beside it, so a time read at 6 pm in July is not an hour out."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")


def _local(value: str | datetime) -> datetime | None:
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(LONDON)


def uk_time(value: str | datetime | None, seconds: bool = False) -> str:
    """``2026-07-01T17:05:09Z`` → ``1 Jul 2026, 18:05 BST``. A value without a
    zone is UTC (as the trail writes it); one that is not a time is shown as is."""
    if value is None or value == "":
        return ""
    local = _local(value)
    if local is None:
        return str(value)
    clock = f"{local:%H:%M:%S}" if seconds else f"{local:%H:%M}"
    return f"{local.day} {local:%b %Y}, {clock} {local.tzname()}"


def uk_time_long(value: str | datetime) -> str:
    """``2026-07-01T17:05:09Z`` → ``1 July 2026 at 18:05:09 BST`` (receipts, print-outs)."""
    local = _local(value)
    if local is None:
        return str(value)
    return f"{local.day} {local:%B %Y} at {local:%H:%M:%S} {local.tzname()}"
