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


def variant_groups(normalised: str) -> frozenset[int]:
    return variant_table().get(normalised, frozenset())


def are_variants(a: str, b: str) -> bool:
    """Two normalised given names on one line of the table (not the same name)."""
    return a != b and bool(variant_groups(a) & variant_groups(b))


def in_table(normalised: str) -> bool:
    return normalised in variant_table()
