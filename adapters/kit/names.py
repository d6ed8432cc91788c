"""Given names people use for one another (a shipped table): nicknames and
spellings ("Katherine", "Kate", "Catherine"; "Mohammed", "Muhammad"), and
which strings are known to be given names. Data: ``given_name_variants.csv``
beside this module (one group a line; see its header)."""

from __future__ import annotations

import functools
from pathlib import Path

from adapters.kit.normalise import normalise_name

TABLE = Path(__file__).with_name("given_name_variants.csv")


@functools.cache
def variant_table() -> dict[str, frozenset[int]]:
    """Each normalised name in the table, with the numbers of the lines that hold it."""
    groups: dict[str, set[int]] = {}
    for number, line in enumerate(TABLE.read_text(encoding="utf-8").splitlines()):
        if not line.strip() or line.startswith("#"):
            continue
        for name in line.split(","):
            key = normalise_name(name)
            if key:
                groups.setdefault(key, set()).add(number)
    return {k: frozenset(v) for k, v in groups.items()}


#: A name on a line this close to its first name is a spelling of the formal
#: name (Katherine, Catharine for Catherine; Elisabeth for Elizabeth).
FORMAL_SPELLING_JW = 0.88


@functools.cache
def formal_table() -> dict[str, frozenset[int]]:
    """Each normalised name that is a formal name on some line (the first, or a
    spelling of it: same Metaphone, or Jaro-Winkler >= FORMAL_SPELLING_JW), with
    the numbers of those lines."""
    import jellyfish
    from rapidfuzz.distance import JaroWinkler

    formal: dict[str, set[int]] = {}
    for number, line in enumerate(TABLE.read_text(encoding="utf-8").splitlines()):
        if not line.strip() or line.startswith("#"):
            continue
        names = [key for key in (normalise_name(n) for n in line.split(",")) if key]
        if not names:
            continue
        first = names[0]
        for key in names:
            if key == first or jellyfish.metaphone(key) == jellyfish.metaphone(first) or (
                    JaroWinkler.similarity(key, first) >= FORMAL_SPELLING_JW):
                formal.setdefault(key, set()).add(number)
    return {k: frozenset(v) for k, v in formal.items()}


def formal_groups(normalised: str) -> frozenset[int]:
    """The lines on which this name is the formal one (first)."""
    return formal_table().get(normalised, frozenset())


def variant_groups(normalised: str) -> frozenset[int]:
    return variant_table().get(normalised, frozenset())


def are_variants(a: str, b: str) -> bool:
    """Two normalised given names on one line of the table (not the same name)."""
    return a != b and bool(variant_groups(a) & variant_groups(b))


def in_table(normalised: str) -> bool:
    return normalised in variant_table()
