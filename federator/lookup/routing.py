"""Which authorities to ask: pure functions over the registry's endpoints."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

NATIONAL = "national"


@dataclass(frozen=True)
class Endpoint:
    id: str
    name: str
    code: str
    coverage: tuple[str, ...]
    protocol: str
    url: str
    timeout_ms: int
    contact: str
    status: str
    #: the registered policy as JSON (fhir-r4: federator/registry/policy.py), or none
    policy: str | None = None


@dataclass(frozen=True)
class Route:
    ask: tuple[Endpoint, ...]
    unavailable: tuple[Endpoint, ...]
    areas: frozenset[str]


def postcode_district(postcode: str) -> str:
    """The outward code of a UK postcode: 'LS6 2AB' -> 'LS6'."""
    compact = re.sub(r"\s+", "", postcode.upper())
    return compact[:-3] if len(compact) > 4 else compact


def areas_for(postcodes: Iterable[str], table: Mapping[str, str]) -> set[str]:
    found = set()
    for postcode in postcodes:
        district = postcode_district(postcode)
        if district in table:
            found.add(table[district])
    return found


def areas_added(areas: Iterable[str], postcodes: Iterable[str], table: Mapping[str, str]
                ) -> tuple[str, ...]:
    """The areas asked beyond those the child's postcodes give (a widening the
    trail flags for review, ``areas_widened``)."""
    return tuple(sorted(set(areas) - areas_for(postcodes, table)))


def route(endpoints: Sequence[Endpoint], *, areas: Iterable[str], postcodes: Iterable[str],
          table: Mapping[str, str], scope: str = "targeted") -> Route:
    """Authorities whose coverage meets the child's areas, plus national ones."""
    wanted = frozenset(set(areas) | areas_for(postcodes, table))
    chosen = [
        e for e in endpoints
        if e.status in ("active", "suspended")
        and (scope == "all" or NATIONAL in e.coverage or wanted.intersection(e.coverage))
    ]
    return Route(
        ask=tuple(e for e in chosen if e.status == "active"),
        unavailable=tuple(e for e in chosen if e.status == "suspended"),
        areas=wanted,
    )


def load_postcode_table(path: Path) -> dict[str, str]:
    """``district,gss_code[,area_name]`` CSV to a district -> GSS mapping."""
    with path.open(newline="", encoding="utf-8") as handle:
        return {row["district"].strip().upper(): row["gss_code"].strip()
                for row in csv.DictReader(handle) if row.get("district")}
