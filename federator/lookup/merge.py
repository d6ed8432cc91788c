"""Merging professionals reported by several authorities. Pure functions."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

FIELDS = ("name", "role", "service", "organisation", "team", "phone", "email")


def _norm(text: Any) -> str:
    decomposed = unicodedata.normalize("NFKD", str(text or "").casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"[^\w]+", " ", plain).strip()


def identity(person: Mapping[str, Any]) -> tuple[str, ...]:
    """Registration number when given, else normalised name + organisation + role."""
    registration = re.sub(r"\s+", "", str(person.get("registration_number") or "")).upper()
    if registration:
        return ("reg", registration)
    return ("nor", _norm(person.get("name")), _norm(person.get("organisation")),
            _norm(person.get("role")))


def merge(reports: Iterable[tuple[str, Iterable[Mapping[str, Any]]]]) -> list[dict[str, Any]]:
    """One entry per professional with every source; current first, then most recent."""
    merged: dict[tuple[str, ...], dict[str, Any]] = {}
    # Reports are read in order of source, so that which authority's details fill an
    # entry never depends on which authority answered first.
    for source, people in sorted(reports, key=lambda report: str(report[0])):
        for person in people:
            key = identity(person)
            entry = merged.get(key)
            if entry is None:
                entry = {f: person.get(f) for f in FIELDS}
                entry.update(current=bool(person.get("current")), sources=[],
                             **{"from": person.get("from"), "to": person.get("to")})
                merged[key] = entry
            else:
                _combine(entry, person)
            if source not in entry["sources"]:
                entry["sources"].append(source)
    for entry in merged.values():
        entry["sources"].sort()
    # The identity breaks ties (namesakes, same dates) so the order is total.
    return [entry for key, entry in sorted(merged.items(),
                                           key=lambda item: (_order(item[1]), item[0]))]


def _combine(entry: dict[str, Any], person: Mapping[str, Any]) -> None:
    for f in FIELDS:
        if not entry.get(f) and person.get(f):
            entry[f] = person[f]
    starts = [d for d in (entry.get("from"), person.get("from")) if d]
    entry["from"] = min(starts) if starts else None
    if entry["current"] or person.get("current"):
        entry["current"], entry["to"] = True, None
    else:
        ends = [d for d in (entry.get("to"), person.get("to")) if d]
        entry["to"] = max(ends) if ends else None


def _order(entry: Mapping[str, Any]) -> tuple[int, int, str, str]:
    recency = (entry.get("from") if entry["current"] else entry.get("to")) or ""
    # Invert an ISO date's characters so that a plain ascending sort puts the newest first.
    inverted = "".join(chr(0x10FFFF - ord(c)) for c in recency)
    return (0 if entry["current"] else 1, 0 if recency else 1, inverted,
            _norm(entry.get("name")))
