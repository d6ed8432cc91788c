"""The practitioner's own recent lookups, read from the audit trail.

Only what the trail holds: when, purpose, basis type and its reference, the
areas asked about, how many authorities gave each outcome and which knew the
child. Never the answers (the trail has none), never the child.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select

from federator.audit.redaction import open_record
from federator.names import (
    DECLINED,
    ERROR,
    LOOKUP_COMPLETED,
    LOOKUP_INTERRUPTED,
    LOOKUP_REQUESTED,
    MATCH,
    NO_MATCH,
    TIMEOUT,
    UNAVAILABLE,
)
from federator.storage import audit_records

EVENTS = (LOOKUP_REQUESTED, LOOKUP_COMPLETED, LOOKUP_INTERRUPTED)
OUTCOME_WORDS = {
    MATCH: "knew the child", NO_MATCH: "did not know the child",
    DECLINED: "declined", TIMEOUT: "did not answer in time",
    ERROR: "could not be reached", UNAVAILABLE: "unavailable",
}


@dataclass
class RecentLookup:
    lookup_id: str
    at: str
    purpose: str
    basis_type: str
    asked: int
    outcomes: dict[str, int] = field(default_factory=dict)
    complete: bool | None = None  # None: not finished (or its record is missing)
    #: cut off by a crash (``lookup.interrupted``): its receipt says so; ask again
    interrupted: bool = False
    #: the basis's own reference (a consent form's, a case number): what tells
    #: two lookups for the same purpose apart
    reference: str = ""
    areas: list[str] = field(default_factory=list)
    #: the authorities that knew the child (ids)
    matched: list[str] = field(default_factory=list)
    #: the lookup this one asked again (a retry)
    follows: str | None = None


def summarise(records: Iterable[Mapping[str, Any]]) -> list[RecentLookup]:
    """Pair each ``lookup.requested`` with its ``lookup.completed`` (or its
    ``lookup.interrupted``), newest first."""
    found: dict[str, RecentLookup] = {}
    for record in records:
        lookup_id = record.get("lookup_id")
        if not isinstance(lookup_id, str):
            continue
        if record.get("event") == LOOKUP_REQUESTED:
            found[lookup_id] = RecentLookup(
                lookup_id=lookup_id, at=str(record.get("at", "")),
                purpose=str(record.get("purpose") or ""),
                basis_type=str(record.get("basis_type") or ""),
                asked=len(record.get("authorities") or []),
                reference=_reference(record.get("basis")),
                areas=[str(a) for a in record.get("areas") or []],
                follows=record.get("follows") if isinstance(record.get("follows"), str)
                else None)
        elif record.get("event") == LOOKUP_COMPLETED and lookup_id in found:
            item = found[lookup_id]
            item.outcomes = dict(Counter(str(o.get("outcome")) for o in
                                         record.get("outcomes") or [] if isinstance(o, Mapping)))
            item.complete = bool(record.get("complete"))
            item.matched = [str(o.get("id")) for o in record.get("outcomes") or []
                            if isinstance(o, Mapping) and o.get("outcome") == MATCH]
        elif record.get("event") == LOOKUP_INTERRUPTED and lookup_id in found \
                and found[lookup_id].complete is None:  # a completion, if any, wins
            found[lookup_id].complete, found[lookup_id].interrupted = False, True
    return sorted(found.values(), key=lambda r: r.at, reverse=True)


def _reference(basis: Any) -> str:
    """The basis's reference (a case or consent form number), or ""."""
    return str(basis.get("reference") or "") if isinstance(basis, Mapping) else ""


def outcome_words(outcomes: Mapping[str, int]) -> list[str]:
    """``{"match": 2, "timeout": 1}`` → ``["2 knew the child", "1 did not answer in time"]``."""
    return [f"{outcomes[k]} {OUTCOME_WORDS[k]}" for k in OUTCOME_WORDS if outcomes.get(k)]


def recent_lookups(engine: Engine, actor_id: str, limit: int = 20) -> list[RecentLookup]:
    """The actor's last ``limit`` lookups (their requested and completed records)."""
    query = (select(audit_records.c.body, audit_records.c.texts)
             .where(audit_records.c.actor_id == actor_id)
             .where(audit_records.c.event.in_(EVENTS))
             .order_by(audit_records.c.seq.desc()).limit(limit * 2 + 10))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    records = [open_record(json.loads(row.body), row.texts) for row in reversed(rows)
               if row.body]
    return summarise(records)[:limit]
