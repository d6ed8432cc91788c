"""The auditor's unit of work: one row per lookup, in plain words (pure).

The trail writes two records for a lookup (``lookup.requested`` when it is
asked, ``lookup.completed`` or ``lookup.interrupted`` when it ends); a refusal
(``lookup.refused``) and a rate limit (``lookup.rate_limited``) are one record
each. ``join_lookups`` makes one ``LookupRow`` of each: its number is the seq
of its first record (the case number of its review), and it keeps the seq of
every record it was made from, so each row links to the records themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from federator.names import (
    LOOKUP_COMPLETED,
    LOOKUP_INTERRUPTED,
    LOOKUP_RATE_LIMITED,
    LOOKUP_REFUSED,
    LOOKUP_REQUESTED,
    MATCH,
)

#: The record each row starts from, and the kind of row it makes.
HEADS = {LOOKUP_REQUESTED: "lookup", LOOKUP_REFUSED: "refused",
         LOOKUP_RATE_LIMITED: "rate_limited"}
#: What ends a lookup: joined onto its ``lookup.requested`` by ``lookup_id``.
ENDINGS = (LOOKUP_COMPLETED, LOOKUP_INTERRUPTED)
KIND_WORDS = {"lookup": "Lookup", "refused": "Refused", "rate_limited": "Too many lookups"}

#: Each flag in a few words (its reason, on the record, says the particulars).
FLAG_WORDS = {
    "safeguarding_basis": "Safeguarding basis: consent not sought",
    "scope_all": "Every authority asked",
    "volume_hour": "Many lookups within an hour",
    "volume_day": "Many lookups within a day",
    "out_of_hours": "Out of hours",
    "no_match_streak": "Many lookups in a row found nobody",
    "child_many_organisations": "Child looked up by several organisations",
    "own_family_name": "Child shares the practitioner's family name",
    "repeat_lookups": "Same child looked up again and again",
    "entry_rejected": "A queued audit entry could not be recorded",
}


def flag_words(flag: str) -> str:
    """``scope_all`` → ``Every authority asked``; a flag not listed here (a newer
    one) in its own name, made readable."""
    return FLAG_WORDS.get(flag) or flag.replace("_", " ").capitalize()


@dataclass
class LookupRow:
    seq: int  # the first record's: the row's (and its review's) number
    kind: str  # lookup, refused or rate_limited
    at: str
    actor_id: str
    actor_role: str
    organisation: str
    lookup_id: str | None = None
    purpose: str = ""
    basis_type: str = ""
    reference: str = ""  # the basis's own (a consent form's, a case number)
    areas: list[str] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)  # authority ids
    #: authority id → outcome, from ``lookup.completed``
    outcomes: dict[str, str] = field(default_factory=dict)
    professionals: int | None = None
    #: True: every authority answered; False: some did not, or it was cut off
    #: (``interrupted``); None: no ending recorded (yet)
    complete: bool | None = None
    interrupted: bool = False
    follows: str | None = None  # the lookup this one asked again
    #: each ``{"flag", "reason", "words", "seq"}``, from any of its records
    flags: list[dict[str, Any]] = field(default_factory=list)
    records: list[int] = field(default_factory=list)
    #: a refusal's fields at fault and reason; a rate limit's limit
    refused_fields: list[str] = field(default_factory=list)
    reason: str = ""
    limit: str = ""

    @property
    def kind_words(self) -> str:
        return KIND_WORDS[self.kind]

    @property
    def flag_names(self) -> list[str]:
        return sorted({f["flag"] for f in self.flags})

    def outcome_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for outcome in self.outcomes.values():
            counts[outcome] = counts.get(outcome, 0) + 1
        return counts

    @property
    def matched(self) -> list[str]:
        return sorted(a for a, o in self.outcomes.items() if o == MATCH)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _flags(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"flag": str(f["flag"]), "reason": _text(f.get("reason")),
             "words": flag_words(str(f["flag"])), "seq": record.get("seq")}
            for f in record.get("flags") or []
            if isinstance(f, Mapping) and isinstance(f.get("flag"), str)]


def row_of(record: Mapping[str, Any]) -> LookupRow | None:
    """The row a head record starts (None for any other record)."""
    kind = HEADS.get(str(record.get("event")))
    if kind is None or not isinstance(record.get("seq"), int):
        return None
    basis = record.get("basis") if isinstance(record.get("basis"), Mapping) else {}
    row = LookupRow(
        seq=record["seq"], kind=kind, at=_text(record.get("at")),
        actor_id=_text(record.get("actor_id")), actor_role=_text(record.get("actor_role")),
        organisation=_text(record.get("actor_organisation")),
        lookup_id=record.get("lookup_id") if isinstance(record.get("lookup_id"), str) else None,
        purpose=_text(record.get("purpose")), basis_type=_text(record.get("basis_type")),
        reference=_text(basis.get("reference")),
        areas=[str(a) for a in record.get("areas") or []],
        asked=[str(a) for a in record.get("authorities") or []],
        follows=record.get("follows") if isinstance(record.get("follows"), str) else None,
        flags=_flags(record), records=[record["seq"]],
        refused_fields=[str(f) for f in record.get("fields") or []],
        reason=_text(record.get("reason")), limit=_text(record.get("limit")))
    return row


def add_ending(row: LookupRow, record: Mapping[str, Any]) -> None:
    """Join a ``lookup.completed`` (which wins) or ``lookup.interrupted`` onto its row."""
    if isinstance(record.get("seq"), int) and record["seq"] not in row.records:
        row.records.append(record["seq"])
        row.records.sort()
    row.flags += _flags(record)
    if record.get("event") == LOOKUP_COMPLETED:
        row.outcomes = {str(o.get("id")): str(o.get("outcome"))
                        for o in record.get("outcomes") or [] if isinstance(o, Mapping)}
        professionals = record.get("professionals")
        row.professionals = professionals if isinstance(professionals, int) else None
        row.complete, row.interrupted = bool(record.get("complete")), False
    elif record.get("event") == LOOKUP_INTERRUPTED and row.complete is None:
        row.complete, row.interrupted = False, True


def join_lookups(heads: Iterable[Mapping[str, Any]], endings: Iterable[Mapping[str, Any]]
                 ) -> list[LookupRow]:
    """One row per head record, in the order given, each with its endings."""
    rows = [row for row in (row_of(h) for h in heads) if row is not None]
    by_lookup = {row.lookup_id: row for row in rows if row.lookup_id and row.kind == "lookup"}
    for record in sorted(endings, key=lambda r: int(r.get("seq") or 0)):
        row = by_lookup.get(record.get("lookup_id"))  # type: ignore[arg-type]
        if row is not None and record.get("event") in ENDINGS:
            add_ending(row, record)
    return rows
