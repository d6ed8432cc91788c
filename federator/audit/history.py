"""What the trail already says about a new lookup's actor and child (for flags)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from federator.audit.flags import FlagLimits, History
from federator.storage import audit_records as r


def stamp(at: datetime) -> str:
    """The trail's ``at`` format, so text comparison orders by time."""
    return at.isoformat(timespec="milliseconds")


def load_history(conn: Connection, record: Mapping[str, Any], limits: FlagLimits) -> History:
    now = datetime.fromisoformat(record["at"])
    actor = record.get("actor_id")
    hour = day = 0
    recent: list[bool] = []
    if actor:
        counted = (select(func.count()).select_from(r)
                   .where(r.c.actor_id == actor, r.c.event == "lookup.requested"))
        hour = conn.execute(counted.where(r.c.at >= stamp(now - timedelta(hours=1)))).scalar_one()
        day = conn.execute(counted.where(r.c.at >= stamp(now - timedelta(days=1)))).scalar_one()
        if limits.no_match_streak:
            bodies = conn.execute(
                select(r.c.body).where(r.c.actor_id == actor, r.c.event == "lookup.completed")
                .order_by(r.c.seq.desc()).limit(limits.no_match_streak)).scalars()
            for body in bodies:
                outcomes = [o.get("outcome") for o in json.loads(body).get("outcomes") or []]
                recent.append(bool(outcomes) and all(o == "no_match" for o in outcomes))
    organisations: frozenset[str] = frozenset()
    if record.get("child_pseudonym"):
        organisations = frozenset(o for o in conn.execute(
            select(r.c.actor_organisation).distinct()
            .where(r.c.child_pseudonym == record["child_pseudonym"],
                   r.c.event == "lookup.requested",
                   r.c.at >= stamp(now - limits.child_window))).scalars() if o)
    return History(actor_lookups_last_hour=hour, actor_lookups_last_day=day,
                   actor_recent_all_no_match=tuple(recent), child_organisations=organisations)
