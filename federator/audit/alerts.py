"""Alerts for auditors: flags that should not wait for someone to filter for them.

``sustained_volume`` (a practitioner busy hour after hour) and ``budget_reached``
(someone, or an organisation, ran into the lookup budget) are shown on every
auditor page for ``WINDOW`` after they are raised, with how many records and
practitioners, linking to the records. Read through the flag index (0009):
at most ``ROWS`` of each flag's newest records, whatever the trail's size.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, bindparam, select

from federator.audit.flags import ALERTS
from federator.audit.tables import audit_flags as f
from federator.storage import audit_records as r

WINDOW = timedelta(hours=24)
ROWS = 500

_NEWEST = (
    select(r.c.at, r.c.actor_id)
    .join(f, f.c.seq == r.c.seq)
    .where(f.c.flag == bindparam("flag"))
    .order_by(f.c.seq.desc()).limit(ROWS)
)


@dataclass(frozen=True)
class Alert:
    flag: str
    records: int
    practitioners: int
    #: ``ROWS`` were read and all were in the window: there may be more
    at_least: bool = False


def summarise(flag: str, rows: Iterable[tuple[str, str | None]], since: datetime
              ) -> Alert | None:
    """One flag's alert from its newest records (``at``, actor), or None."""
    rows = list(rows)
    recent = [(at, actor) for at, actor in rows if datetime.fromisoformat(at) >= since]
    if not recent:
        return None
    return Alert(flag, len(recent), len({a for _, a in recent if a}),
                 at_least=len(rows) >= ROWS and len(recent) == len(rows))


def recent_alerts(engine: Engine, now: datetime | None = None) -> list[Alert]:
    since = (now or datetime.now(UTC)) - WINDOW
    found = []
    with engine.connect() as conn:
        for flag in ALERTS:
            rows = conn.execute(_NEWEST, {"flag": flag})
            alert = summarise(flag, ((at, actor) for at, actor in rows), since)
            if alert:
                found.append(alert)
    return found
