"""Merging professionals reported by several authorities. Pure functions.

One authority's values never replace another's. Reports of one professional (the
same registration number, else the same name, organisation and role) become one
entry whose ``contacts`` hold every source's phone and e-mail beside the sources
that gave them, so an authority that reports someone else's registration number
with its own phone shows that phone only under its own name. The entry's other
details come from the preferred source, blanks filled from the next: the source
whose registered name is the organisation the other sources give for the
professional (their own organisation) comes first, the more sources agreeing the
better (a source's word for itself does not count); then sources in order of id.
Its ``phone`` and ``email`` are the preferred source's only when the contacts agree
or that preference is plain; else they are empty and ``contacts`` alone speak.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

FIELDS = ("name", "role", "service", "organisation", "team", "phone", "email")
#: Filled from the preferred report, blanks from the next; contact is per source.
DETAILS = ("name", "role", "service", "organisation", "team")
#: Words that say what kind of body an organisation is, not which one: "Leeds City
#: Council" is the organisation of "Leeds Children's Services".
GENERIC_WORDS = frozenset((
    "the", "of", "and", "for", "city", "county", "borough", "metropolitan", "district",
    "council", "royal", "children", "childrens", "s", "young", "people", "family",
    "families", "service", "services", "social", "care", "health", "nhs", "trust",
    "foundation", "integrated", "board", "icb", "authority", "department", "team",
))

Report = tuple[str, Iterable[Mapping[str, Any]]]


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


@functools.lru_cache(maxsize=4096)
def _distinctive(text: str) -> frozenset[str]:
    return frozenset(_norm(text).split()) - GENERIC_WORDS


def same_organisation(source_name: Any, organisation: Any) -> bool:
    """Whether an authority's registered name names ``organisation``: their
    distinctive words agree, one set within the other ("Leeds Children's Services"
    and "Leeds City Council"; not "North Yorkshire Council" and "Yorkshire
    Community Health NHS Trust")."""
    ours, theirs = _distinctive(str(source_name or "")), _distinctive(str(organisation or ""))
    return bool(ours and theirs) and (ours <= theirs or theirs <= ours)


def merge(reports: Iterable[Report], names: Mapping[str, str] | None = None
          ) -> list[dict[str, Any]]:
    """One entry per professional with every source and every source's contact;
    current first, then most recent. ``names``: each source's registered name (its
    id when missing), which says whose organisation a professional is."""
    found: dict[tuple[str, ...], list[tuple[str, Mapping[str, Any]]]] = {}
    for source, people in reports:
        for person in people:
            found.setdefault(identity(person), []).append((str(source), person))
    entries = {key: _entry(seen, names or {}) for key, seen in found.items()}
    # The identity breaks ties (namesakes, same dates) so the order is total.
    return [entry for key, entry in sorted(entries.items(),
                                           key=lambda item: (_order(item[1]), item[0]))]


def _entry(seen: list[tuple[str, Mapping[str, Any]]], names: Mapping[str, str]
           ) -> dict[str, Any]:
    def votes(source: str) -> int:
        """How many other sources give the professional this source's organisation:
        each source once, never its own word for itself (an authority can name
        itself as the organisation, or repeat a report, but not vote for itself)."""
        name = names.get(source, source)
        return len({other for other, person in seen if other != source
                    and same_organisation(name, person.get("organisation"))})

    # The order never depends on which authority answered first.
    ranked = seen if len(seen) == 1 else sorted(
        seen, key=lambda sp: (-votes(sp[0]), sp[0], _tiebreak(sp[1])))
    entry: dict[str, Any] = {f: None for f in FIELDS}
    for _, person in ranked:
        for f in DETAILS:
            if not entry.get(f) and person.get(f):
                entry[f] = person[f]
    contacts: list[dict[str, Any]] = []
    for source, person in ranked:
        phone, email = person.get("phone") or None, person.get("email") or None
        if phone is None and email is None:
            continue
        same = next((c for c in contacts if _same_contact(c, phone, email)), None)
        if same is None:
            contacts.append({"phone": phone, "email": email, "sources": [source]})
        elif source not in same["sources"]:
            same["sources"].append(source)
    if contacts and _settled(contacts, votes):
        entry["phone"], entry["email"] = contacts[0]["phone"], contacts[0]["email"]
    entry["contacts"] = contacts
    entry["sources"] = sorted({source for source, _ in seen})
    _dates(entry, [person for _, person in seen])
    return entry


def _settled(contacts: list[dict[str, Any]], votes: Any) -> bool:
    """Whether the entry may name one contact as the professional's: every source
    agrees, or the first contact's sources are plainly the professional's own
    organisation (more other sources say so than for any other contact). Else the
    top-line ``phone`` and ``email`` stay empty and only ``contacts`` speak, each
    beside its sources: no order of ids decides whose number is the real one."""
    if len(contacts) == 1:
        return True
    lead = max(votes(s) for s in contacts[0]["sources"])
    rest = max(votes(s) for c in contacts[1:] for s in c["sources"])
    return lead > rest


def _tiebreak(person: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(str(person.get(f) or "") for f in (*FIELDS, "from", "to"))


def _same_contact(contact: Mapping[str, Any], phone: str | None, email: str | None) -> bool:
    def digits(value: str | None) -> str:
        return re.sub(r"[^0-9x+]", "", (value or "").casefold())

    return (digits(contact["phone"]) == digits(phone)
            and (contact["email"] or "").casefold() == (email or "").casefold())


def _dates(entry: dict[str, Any], people: list[Mapping[str, Any]]) -> None:
    """Current if any report is; from the earliest start; a past entry to the latest
    end (one report keeps its own dates: a current involvement's planned end)."""
    if len(people) == 1:
        [p] = people
        entry.update(current=bool(p.get("current")), to=p.get("to"), **{"from": p.get("from")})
        return
    starts = [p["from"] for p in people if p.get("from")]
    entry["from"] = min(starts) if starts else None
    entry["current"] = any(bool(p.get("current")) for p in people)
    ends = [p["to"] for p in people if p.get("to")]
    entry["to"] = None if entry["current"] or not ends else max(ends)


def _order(entry: Mapping[str, Any]) -> tuple[int, int, str, str]:
    recency = (entry.get("from") if entry["current"] else entry.get("to")) or ""
    # Invert an ISO date's characters so that a plain ascending sort puts the newest first.
    inverted = "".join(chr(0x10FFFF - ord(c)) for c in recency)
    return (0 if entry["current"] else 1, 0 if recency else 1, inverted,
            _norm(entry.get("name")))
