"""Children whose names test the whole path to a kit match (apostrophes, accents,
other scripts), added to a demo federation's kit, and the lookup that asks for them."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from federator.demo.federation import Federation


def nhs_number(stem: str) -> str:
    """A valid NHS number from nine digits (Modulus 11), in the 999 test range."""
    for n in range(1000):
        digits = f"{stem}{n:03d}"[:9] if len(stem) < 9 else stem[:9]
        total = sum(int(d) * (10 - i) for i, d in enumerate(digits))
        check = 11 - total % 11
        if check == 11:
            check = 0
        if check != 10:
            return digits + str(check)
        stem = str(int(stem) + 1)
    raise AssertionError("no valid NHS number")


@dataclass(frozen=True)
class Named:
    given_name: str
    family_name: str
    nhs_number: str
    date_of_birth: date
    postcode: str
    authority: str

    def child(self, *, with_nhs: bool = True) -> dict[str, Any]:
        child: dict[str, Any] = {"given_name": self.given_name, "family_name": self.family_name,
                                 "date_of_birth": self.date_of_birth.isoformat(),
                                 "postcodes": [self.postcode]}
        if with_nhs:
            child["nhs_number"] = self.nhs_number
        return child


#: Names a real register holds: apostrophes, hyphens, accents, other scripts.
NAMES = (
    ("Siân", "O'Connor-Ñúñez"),
    ("Zoë", "Ní Bhriain"),
    ("Anna-Maria", "D’Arcy"),
    ("Анна", "Петрова"),
    ("美咲", "佐藤"),
    ("Amira", "العلي"),
    ("Łucja", "Wiśniewska-Żak"),
)


def add_named_children(fed: Federation) -> list[Named]:
    """Add one child per name in ``NAMES`` to a normal kit's CSV (the kit reads
    it again when it changes), each copying a real row's professional and postcode."""
    authority = next(a for a in fed.world.authorities
                     if a.behaviour == "normal" and not a.national)
    path = fed.files.csv_paths[authority.id]
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    template = next(r for r in rows if r["shielded"] == "false" and r["professional_name"]
                    and r["sensitive"] == "false" and not r["to"] and r["postcode"])
    named = []
    added = []
    for i, (given, family) in enumerate(NAMES):
        person = Named(given, family, nhs_number(f"99900{i:02d}11"),
                       date(2014, 1, 1) + timedelta(days=97 * i), template["postcode"],
                       authority.id)
        named.append(person)
        added.append({**template, "child_ref": f"UNICODE-{i}", "nhs_number": person.nhs_number,
                      "given_name": given, "family_name": family,
                      "date_of_birth": person.date_of_birth.isoformat()})
    with path.open("a", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0].keys()), lineterminator="\n")
        writer.writerows(added)
    return named


def consent() -> dict[str, Any]:
    return {"type": "consent", "given_by": "parent",
            "given_on": (date.today() - timedelta(days=3)).isoformat(),
            "reference": "CASE-123", "covers_sensitive_services": False}


def lookup_body(child: dict[str, Any]) -> dict[str, Any]:
    return {"child": child, "purpose": "Assessment under section 17: services involved",
            "basis": consent(), "include_past": True}
