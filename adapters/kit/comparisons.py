"""Comparison levels, field by field (pure functions): how a request's value
and a record's agree. The first level that holds is the one taken; ``None``
means the value is missing on either side (it neither helps nor sinks a match).

- given name: exact, variant (nickname or spelling, ``names.py``), part (one
  part of a double name), close (one edit, or Jaro-Winkler >= 0.92), phonetic
  (Metaphone or NYSIIS agree), fuzzy (Jaro-Winkler >= 0.80), initial, other;
- family name: the same without variant ("part": either part of a
  hyphenated or double name);
- date of birth: exact, transposed (day and month swapped), year_off (by
  one), one_digit (one digit wrong), digits_swapped (two neighbouring digits
  swapped over: 1990-07-20 typed 1990-02-70), other;
- postcode: full, sector, district, near (one character wrong), other; the
  best over the request's postcodes (their order does not count).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

import jellyfish
from rapidfuzz.distance import OSA, JaroWinkler

from adapters.kit.names import formal_groups, variant_groups
from adapters.kit.normalise import (
    name_parts,
    normalise_postcode,
    postcode_district,
    postcode_sector,
)

GIVEN_LEVELS = ("exact", "variant", "part", "close", "phonetic", "fuzzy", "initial", "other")
FAMILY_LEVELS = ("exact", "part", "close", "phonetic", "fuzzy", "initial", "other")
DOB_LEVELS = ("exact", "transposed", "year_off", "one_digit", "digits_swapped", "other")
POSTCODE_LEVELS = ("full", "sector", "district", "near", "other")

CLOSE_JW = 0.92
FUZZY_JW = 0.80


@dataclass(frozen=True, slots=True)
class Name:
    """A name prepared once for comparing."""

    full: str  # normalised, parts joined
    parts: tuple[str, ...]
    metaphone: str
    nysiis: str
    groups: frozenset[int]
    formal: frozenset[int]  # the table's lines on which it is the formal name


@functools.lru_cache(maxsize=1 << 17)
def prepare_name(value: str | None) -> Name | None:
    parts = name_parts(value)
    if not parts:
        return None
    full = "".join(parts)
    letters = "".join(c for c in full if c.isascii() and c.isalpha())
    return Name(full, parts,
                jellyfish.metaphone(letters) if letters else "",
                jellyfish.nysiis(letters) if letters else "",
                variant_groups(full), formal_groups(full))


@dataclass(frozen=True, slots=True)
class Postcode:
    full: str
    sector: str | None
    district: str | None


@functools.lru_cache(maxsize=1 << 16)
def prepare_postcode(value: str | None) -> Postcode | None:
    full = normalise_postcode(value)
    if not full:
        return None
    return Postcode(full, postcode_sector(full), postcode_district(full))


def edits(a: str, b: str) -> int:
    """Optimal string alignment distance (an adjacent swap is one edit)."""
    return OSA.distance(a, b)


def compare_names(a: Name | None, b: Name | None, *, variants: bool) -> str | None:
    if a is None or b is None:
        return None
    return _compare_names(a, b, variants)


@functools.lru_cache(maxsize=1 << 16)  # names repeat: Smith against Smith, many times
def _compare_names(a: Name, b: Name, variants: bool) -> str:
    if a.full == b.full:
        return "exact"
    if variants and a.groups & b.groups:
        return "variant"
    if (len(a.parts) > 1 or len(b.parts) > 1) and _share_part(a, b):
        return "part"
    if len(a.full) == 1 or len(b.full) == 1:
        return "initial" if a.full[0] == b.full[0] else "other"
    jw = JaroWinkler.similarity(a.full, b.full)
    if jw >= CLOSE_JW or (min(len(a.full), len(b.full)) >= 3 and edits(a.full, b.full) <= 1):
        return "close"
    if (a.metaphone and a.metaphone == b.metaphone) or (a.nysiis and a.nysiis == b.nysiis):
        return "phonetic"
    if jw >= FUZZY_JW:
        return "fuzzy"
    return "other"


def _share_part(a: Name, b: Name) -> bool:
    """A part of one (two letters or more) is a part of the other, or all of it."""
    mine = {p for p in a.parts if len(p) > 1} | {a.full}
    theirs = {p for p in b.parts if len(p) > 1} | {b.full}
    return bool(mine & theirs)


def one_name_forms(a: Name, b: Name) -> bool:
    """Variants (``a.groups & b.groups``) that are one child's name: one of them
    is the formal name of a line that holds both (Catherine and Kate), or they
    begin with the same letter or sound alike (Kate and Katie, Kathy and Cathy).
    Two forms of one formal name that begin differently (Bella and Ella,
    Alfie and Freddie) are given names in their own right, and may be two
    children: the table's line says only that both come from Isabella."""
    return bool((a.formal & b.groups) | (b.formal & a.groups)) or (
        a.full[0] == b.full[0]) or bool(a.metaphone and a.metaphone == b.metaphone)


def compare_given(a: Name | None, b: Name | None) -> str | None:
    return compare_names(a, b, variants=True)


def compare_family(a: Name | None, b: Name | None) -> str | None:
    return compare_names(a, b, variants=False)


def compare_dob(a: str | None, b: str | None) -> str | None:
    """Dates as "YYYYMMDD" digits (``normalise.dob_digits``)."""
    if a is None or b is None:
        return None
    if a == b:
        return "exact"
    if a[:4] == b[:4] and a[4:6] == b[6:8] and a[6:8] == b[4:6]:
        return "transposed"
    if a[4:] == b[4:] and abs(int(a[:4]) - int(b[:4])) == 1:
        return "year_off"
    differ = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
    if len(differ) == 1:
        return "one_digit"
    if (len(differ) == 2 and differ[1] == differ[0] + 1
            and a[differ[0]] == b[differ[1]] and a[differ[1]] == b[differ[0]]):
        return "digits_swapped"
    return "other"


def compare_postcode(a: Postcode, b: Postcode) -> str:
    if a.full == b.full:
        return "full"
    if a.sector is not None and a.sector == b.sector:
        return "sector"
    if a.district is not None and a.district == b.district:
        return "district"
    if len(a.full) == len(b.full) and edits(a.full, b.full) <= 1:
        return "near"
    return "other"


def compare_postcodes(asked: Iterable[Postcode], known: Postcode | None) -> str | None:
    """The best level over the request's postcodes; None when nothing to compare."""
    if known is None:
        return None
    best: str | None = None
    for p in asked:
        level = compare_postcode(p, known)
        if best is None or POSTCODE_LEVELS.index(level) < POSTCODE_LEVELS.index(best):
            best = level
    return best
