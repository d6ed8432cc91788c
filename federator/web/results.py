"""What the results page shows, from the API's answer (pure: no Flask, no I/O)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from adapters.wire_professional import EMAIL
from federator.names import ANSWERED, DECLINED, ERROR, MATCH, NO_MATCH, TIMEOUT, UNAVAILABLE

OUTCOME_TEXT = {
    MATCH: ("Knows the child", "govuk-tag--green"),
    NO_MATCH: ("Does not know the child", "govuk-tag--grey"),
    DECLINED: ("Declined to answer", "govuk-tag--orange"),
    TIMEOUT: ("Did not answer in time", "govuk-tag--red"),
    ERROR: ("Could not be reached", "govuk-tag--red"),
    UNAVAILABLE: ("Unavailable", "govuk-tag--red"),
}


def long_date(value: str | None) -> str | None:
    """``2025-09-01`` → ``1 September 2025`` (anything else unchanged)."""
    if not value:
        return None
    try:
        day = date.fromisoformat(value[:10])
    except ValueError:
        return value
    return f"{day.day} {day:%B %Y}"


def involvement(person: Mapping[str, Any]) -> str:
    start, end = long_date(person.get("from")), long_date(person.get("to"))
    if person.get("current"):
        return f"Current, since {start}" if start else "Current"
    if start and end:
        return f"{start} to {end}"
    if end:
        return f"Until {end}"
    return f"From {start}" if start else "Past (dates not given)"


#: The child's details as a practitioner says them.
DETAIL_WORDS = {"nhs_number": "NHS number", "given_name": "first name",
                "family_name": "last name", "date_of_birth": "date of birth",
                "postcode": "postcode"}


def listed(words: Sequence[str]) -> str:
    """``["a", "b", "c"]`` → ``"a, b and c"``."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def details(names: Sequence[str]) -> list[str]:
    """The details in words, the two names said once as "name" when both are there."""
    named = set(names)
    if {"given_name", "family_name"} <= named:
        named -= {"given_name", "family_name"}
        named.add("name")
    order = ("nhs_number", "name", "given_name", "family_name", "date_of_birth", "postcode")
    return [DETAIL_WORDS.get(n, n) for n in order if n in named]


def how_matched(authority: Mapping[str, Any]) -> str | None:
    """How the authority knew the child, or what would settle a possible match."""
    agreed = details(authority.get("matched_on") or [])
    if authority.get("outcome") == MATCH and agreed:
        return f"Matched on {listed(agreed)}"
    wanted = details(authority.get("ask_for") or [])
    if authority.get("outcome") == NO_MATCH and wanted:
        return (f"A possible match, not certain enough to share: the {listed(wanted)} "
                "would settle it")
    return None


def plain_email(value: Any) -> bool:
    """A ``mailto:`` link only for a plain address (the broker's answers hold no
    other, and a plug-in's answer is checked here too)."""
    return isinstance(value, str) and EMAIL.fullmatch(value) is not None


def results_view(result: Mapping[str, Any],
                 contacts: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Split and label the answer for the page; drops nothing the answer holds.
    ``contacts``: the registry's contact for each authority, by id, shown beside
    an authority that did not answer (the practitioner is told to call them)."""
    contacts = contacts or {}
    authorities: Sequence[Mapping[str, Any]] = result.get("authorities") or []
    names = {a["id"]: a.get("name") or a["id"] for a in authorities}

    def person(p: Mapping[str, Any]) -> dict[str, Any]:
        contacts = p.get("contacts")
        if contacts is None:  # an answer from before contacts were kept per source
            contacts = [{"phone": p.get("phone"), "email": p.get("email"),
                         "sources": p.get("sources") or []}]
        return {**p, "involvement": involvement(p),
                "source_names": [names.get(s, s) for s in p.get("sources") or []],
                # one line per contact, beside the authorities that gave it: where they
                # disagree, no authority's phone is shown as another's
                "contact_lines": [{"phone": c.get("phone"), "email": c.get("email"),
                                   "mailto": plain_email(c.get("email")),
                                   "source_names": [names.get(s, s)
                                                    for s in c.get("sources") or []]}
                                  for c in contacts]}

    people = [person(p) for p in result.get("professionals") or []]
    return {
        "lookup_id": result.get("lookup_id"),
        # more than one when the answer puts a lookup and its "ask again" together
        "lookups": list(result.get("lookups") or [result.get("lookup_id")]),
        "complete": bool(result.get("complete")),
        "missing": [{"name": a.get("name") or a["id"],
                     "text": OUTCOME_TEXT.get(a.get("outcome", ""), ("No answer", ""))[0],
                     "contact": [line.strip() for line in
                                 (contacts.get(a["id"]) or "").splitlines() if line.strip()]}
                    for a in authorities if a.get("outcome") not in ANSWERED],
        "authorities": [{"name": a.get("name") or a["id"],
                         "outcome": OUTCOME_TEXT.get(a.get("outcome", ""),
                                                     (a.get("outcome"), ""))[0],
                         "tag": OUTCOME_TEXT.get(a.get("outcome", ""), ("", ""))[1],
                         "how": how_matched(a), "lookup": a.get("lookup"),
                         # what the broker left out of a match (how many, and why)
                         "left_out": a.get("detail") if a.get("outcome") == MATCH else None}
                        for a in authorities],
        "current": [p for p in people if p.get("current")],
        "past": [p for p in people if not p.get("current")],
        "notices": [{"authority": names.get(n.get("authority"), n.get("authority")),
                     "text": n.get("text", "")} for n in result.get("notices") or []],
    }
