"""Candidate narrowing: which records can possibly score high enough to matter,
found through an index instead of scoring every record.

The index is built once when the source (re)loads
(``sources.Records.match_index``): the first record for each NHS number, and
record positions by date of birth, by full postcode, by postcode district and
by a normalised family name key.

Why narrowing loses nothing. :func:`adapters.kit.matching.match_child` only
looks at records scoring at least ``possible_threshold`` (the best one, and
the runner-up when it reaches ``match_threshold``). A record's demographic
score is ``NAME·n + DOB·d + POSTCODE·p`` (or, with no postcode on either side,
``(NAME·n + DOB·d) / (NAME + DOB) · NO_POSTCODE_CEILING``), every part in 0..1.
``d > 0`` only for the same date of birth or its day/month transposition, so
a record that is in neither of the date buckets has ``d = 0`` and scores at most

- :func:`bound_without_dob_or_postcode` (no full postcode in common:
  ``NAME + POSTCODE·SAME_DISTRICT`` = 0.55 with today's weights), or
- :func:`bound_without_dob_or_district` (not even the district in common: 0.506).

So when ``possible_threshold`` is above the first bound, the records sharing
the date of birth (either way round) or a full postcode are every record that
can matter; above the second, the district buckets are added; otherwise the
matcher scans everything. ``tests/unit/kit/test_kit_candidates.py`` holds this
against the full scan on generated populations.

The family name key (normalised letters, vowels after the first dropped,
doubled letters folded: "Okafor" and "Okafour" share ``okfr``) is kept for
looking records up by name, but is never needed for the proof: a name alone
cannot reach the threshold, and a typo in a name can change any key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from adapters.kit import matching as m
from adapters.kit.sources import ChildRecord


def bound_without_dob_or_postcode() -> float:
    """The highest score of a record with no date of birth hit and no full postcode hit."""
    with_district = m.NAME_WEIGHT + m.POSTCODE_WEIGHT * m.SAME_DISTRICT_SCORE
    return max(with_district, bound_without_dob_or_district())


def bound_without_dob_or_district() -> float:
    """The highest score of a record with no date of birth hit and no postcode in common."""
    no_postcode = m.NAME_WEIGHT / (m.NAME_WEIGHT + m.DOB_WEIGHT) * m.NO_POSTCODE_CEILING
    return max(m.NAME_WEIGHT, no_postcode)


def family_key(name: str | None) -> str:
    """A coarse phonetic key: normalised, vowels (and h, w, y) after the first letter
    dropped, runs of one letter folded."""
    plain = m.normalise_name(name)
    if not plain:
        return ""
    kept = plain[0] + "".join(c for c in plain[1:] if c not in "aeiouhwy")
    return "".join(c for i, c in enumerate(kept) if i == 0 or c != kept[i - 1])


def transposed(born: date) -> date | None:
    """The date with day and month swapped (same year), when that is a date."""
    try:
        swapped = date(born.year, born.day, born.month)
    except ValueError:
        return None
    return swapped if swapped != born else None


@dataclass
class RecordIndex:
    size: int
    by_nhs: dict[str, int] = field(default_factory=dict)
    by_dob: dict[date, list[int]] = field(default_factory=dict)
    by_postcode: dict[str, list[int]] = field(default_factory=dict)
    by_district: dict[str, list[int]] = field(default_factory=dict)
    by_family: dict[str, list[int]] = field(default_factory=dict)


def build_index(records: Sequence[ChildRecord]) -> RecordIndex:
    index = RecordIndex(size=len(records))
    for i, r in enumerate(records):
        nhs = m.normalise_nhs_number(r.nhs_number)
        if nhs:
            index.by_nhs.setdefault(nhs, i)  # the first, as a scan would find it
        if r.date_of_birth is not None:
            index.by_dob.setdefault(r.date_of_birth, []).append(i)
        postcode = m.normalise_postcode(r.postcode)
        if postcode:
            index.by_postcode.setdefault(postcode, []).append(i)
            index.by_district.setdefault(m.outward_code(postcode), []).append(i)
        key = family_key(r.family_name)
        if key:
            index.by_family.setdefault(key, []).append(i)
    return index


def candidates(index: RecordIndex, child: Mapping[str, Any], possible_threshold: float
               ) -> list[int] | None:
    """Positions of every record that can score ``possible_threshold`` or more,
    in record order; ``None`` when the threshold is too low to narrow safely
    (the caller scans everything)."""
    with_district = possible_threshold <= bound_without_dob_or_postcode()
    if possible_threshold <= bound_without_dob_or_district():
        return None
    found: set[int] = set()
    born = m.parse_date(child.get("date_of_birth"))
    if born is not None:
        for day in (born, transposed(born)):
            if day is not None:
                found.update(index.by_dob.get(day, ()))
    postcodes = {p for p in (m.normalise_postcode(x) for x in _strings(child.get("postcodes")))
                 if p}
    for postcode in postcodes:
        found.update(index.by_postcode.get(postcode, ()))
        if with_district:
            found.update(index.by_district.get(m.outward_code(postcode), ()))
    return sorted(found)


def _strings(values: Iterable[Any] | None) -> Iterable[str]:
    return (v for v in values or () if isinstance(v, str))
