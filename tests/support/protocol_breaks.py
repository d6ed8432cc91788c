"""Real ``federator-lookup/1`` messages broken in one field each: what the JSON
Schemas (docs/schemas/) must refuse (issue 22). Each function breaks a deep copy
in place."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

REQUEST_BREAKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "no lookup_id": lambda r: r.pop("lookup_id"),
    "lookup_id a number": lambda r: r.update(lookup_id=42),
    "no child": lambda r: r.pop("child"),
    "nhs_number with a space": lambda r: r["child"].update(nhs_number="999 000 0018"),
    "nhs_number and names all null": lambda r: r["child"].update(
        nhs_number=None, given_name=None, family_name=None, date_of_birth=None),
    "date_of_birth not ISO": lambda r: r["child"].update(date_of_birth="04/03/2015"),
    "date_of_birth not a day": lambda r: r["child"].update(date_of_birth="2015-02-30"),
    "postcode lower case": lambda r: r["child"].update(postcodes=["ls6 2ab"]),
    "purpose too short": lambda r: r.update(purpose="because"),
    "basis type unknown": lambda r: r["basis"].update(type="curiosity"),
    "consent without reference": lambda r: r["basis"].pop("reference"),
    "consent with a justification": lambda r: r["basis"].update(justification="x" * 50),
    "given_by unknown": lambda r: r["basis"].update(given_by="neighbour"),
    "requester without id": lambda r: r["requester"].pop("id"),
    "include_past a string": lambda r: r.update(include_past="yes"),
}

ANSWER_BREAKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "no status": lambda a: a.pop("status"),
    "status unknown": lambda a: a.update(status="maybe"),
    "no lookup_id": lambda a: a.pop("lookup_id"),
    "confidence above 1": lambda a: a.update(confidence=1.5),
    "notice too long": lambda a: a.update(notice="x" * 2001),
    "record_ref with a space": lambda a: a.update(record_ref="a b"),
    "record_ref too long": lambda a: a.update(record_ref="a" * 129),
    "matched_on names an unknown field": lambda a: a.update(matched_on=["shoe_size"]),
    "no_match with professionals": lambda a: a.update(status="no_match"),
    "professional without a name": lambda a: a["professionals"][0].pop("name"),
    "professional name with a line break": lambda a: a["professionals"][0].update(
        name="Sam\nPatel"),
    "professional name with a bidi override": lambda a: a["professionals"][0].update(
        name="Sam \u202ePatel"),
    "email that is a mailto trick": lambda a: a["professionals"][0].update(
        email="a@x.invalid?bcc=attacker@evil.example"),
    "phone with letters": lambda a: a["professionals"][0].update(phone="call me"),
    "from not ISO": lambda a: a["professionals"][0].update(**{"from": "1 Sept 2025"}),
    "no phone and no email": lambda a: a["professionals"][0].update(phone=None, email=None),
    "current a string": lambda a: a["professionals"][0].update(current="yes"),
}
