"""Helpers for the production tests (logs, two brokers, bad input): children
whose names test the whole path to a kit match, and captured JSON logs."""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from federator.demo.federation import Federation
from federator.logs import JsonFormatter


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


@contextmanager
def json_logs(level: int = logging.DEBUG) -> Iterator[io.StringIO]:
    """Every log line of this process, as the broker writes them (JSON), into a buffer."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    root.handlers[:] = [handler]
    root.setLevel(level)
    try:
        yield buffer
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def identity_strings(children: Sequence[dict[str, Any]]) -> set[str]:
    """What must never be in a log line: NHS numbers (also spaced), names, dates of birth."""
    found: set[str] = set()
    for child in children:
        nhs = child.get("nhs_number")
        if nhs:
            found |= {nhs, f"{nhs[:3]} {nhs[3:6]} {nhs[6:]}"}
        for key in ("given_name", "family_name"):
            if child.get(key):
                found.add(child[key])
                found.add(json.dumps(child[key])[1:-1])  # as escaped in JSON
        dob = child.get("date_of_birth")
        if dob:
            found.add(dob)
            y, m, d = dob.split("-")
            found |= {f"{d}/{m}/{y}", f"{y}{m}{d}"}
    return found


def leaks(lines: Sequence[str], secrets: set[str]) -> list[tuple[str, str]]:
    return [(s, line) for line in lines for s in secrets if s and s in line]


def read_path(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8", errors="replace").splitlines()
