"""Measuring demographic matching: a generated population, queries with the
errors real requests carry, and precision and recall at given thresholds.

Pure functions over generated data (Faker, ``en_GB``, fixed seed), used by
``benchmarks/matching.py`` and by a unit test that holds matching to a
quality bar. Queries carry no NHS number: they measure the demographic path.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from faker import Faker

from adapters.kit.matching import MOVED_HOUSE_POSSIBLE, match_child
from adapters.kit.sources import ChildRecord, Records

#: Given names and the forms a requester may use instead.
VARIANTS = {
    "Katherine": "Catherine", "Mohammed": "Muhammad", "Jon": "John", "Zoe": "Zoë",
    "Stephen": "Steven", "Aisha": "Ayesha", "Sian": "Siân", "Oliver": "Olivier",
}
KINDS = ("exact", "typo", "variant", "dob_transposed", "moved", "swapped", "no_postcode",
         "stranger")


@dataclass(frozen=True)
class Query:
    kind: str
    child: dict[str, Any]
    expected: str | None  # child_ref of the right record, None for a stranger


@dataclass(frozen=True)
class Quality:
    queries: int
    true_matches: int
    false_matches: int
    missed: int
    possible: int  # queries answered no_match with the possible-match notice

    @property
    def precision(self) -> float:
        matched = self.true_matches + self.false_matches
        return self.true_matches / matched if matched else 1.0

    @property
    def recall(self) -> float:
        wanted = self.true_matches + self.missed
        return self.true_matches / wanted if wanted else 1.0


def generate_population(n: int, *, seed: int = 4) -> Records:
    fake = Faker("en_GB")
    fake.seed_instance(seed)
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    people = []
    for i in range(n):
        given = rng.choice(list(VARIANTS)) if rng.random() < 0.1 else fake.first_name()
        born = date(2008, 1, 1) + timedelta(days=rng.randrange(18 * 365))
        people.append(ChildRecord(child_ref=f"C-{i}", nhs_number=None, given_name=given,
                                  family_name=fake.last_name(), date_of_birth=born,
                                  postcode=fake.postcode()))
    return Records(people)


def _typo(name: str, rng: random.Random) -> str:
    if len(name) < 4:
        return name + name[-1]
    i = rng.randrange(1, len(name) - 1)
    how = rng.choice(("drop", "swap", "double", "replace"))
    if how == "drop":
        return name[:i] + name[i + 1:]
    if how == "swap":
        return name[:i] + name[i + 1] + name[i] + name[i + 2:]
    if how == "double":
        return name[:i] + name[i] + name[i:]
    return name[:i] + rng.choice("aeiou") + name[i + 1:]


def _transposed(born: date) -> date:
    try:
        return date(born.year, born.day, born.month) if born.day <= 12 else born
    except ValueError:
        return born


def make_queries(population: Sequence[ChildRecord], n: int, *, seed: int = 5) -> list[Query]:
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    fake = Faker("en_GB")
    fake.seed_instance(seed)
    queries = []
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        if kind == "stranger":
            born = date(2008, 1, 1) + timedelta(days=rng.randrange(18 * 365))
            queries.append(Query(kind, {"given_name": fake.first_name(),
                                        "family_name": fake.last_name(),
                                        "date_of_birth": born.isoformat(),
                                        "postcodes": [fake.postcode()]}, None))
            continue
        r = rng.choice(population)
        assert r.date_of_birth is not None
        given, family, born = r.given_name, r.family_name, r.date_of_birth
        postcodes = [r.postcode or ""]
        if kind == "typo":
            family = _typo(family, rng) if rng.random() < 0.5 else family
            given = _typo(given, rng) if family == r.family_name else given
        elif kind == "variant":
            given = VARIANTS.get(given, _typo(given, rng))
        elif kind == "dob_transposed":
            born = _transposed(born)
        elif kind == "moved":
            postcodes = [fake.postcode()]
        elif kind == "swapped":
            given, family = family, given
        elif kind == "no_postcode":
            postcodes = []
        queries.append(Query(kind, {"given_name": given, "family_name": family,
                                    "date_of_birth": born.isoformat(), "postcodes": postcodes},
                             r.child_ref))
    return queries


def evaluate(population: Sequence[ChildRecord], queries: Sequence[Query], *,
             match_threshold: float, possible_threshold: float, narrow: bool = True,
             moved_house: str = MOVED_HOUSE_POSSIBLE) -> dict[str, Quality]:
    """Quality overall (``"all"``) and per kind of query; ``narrow=False`` scores
    every record (the index is used only when ``population`` is ``Records``)."""
    counts: dict[str, list[int]] = {}
    for q in queries:
        result = match_child({"nhs_number": None, **q.child}, population,
                             match_threshold=match_threshold,
                             possible_threshold=possible_threshold, narrow=narrow,
                             moved_house=moved_house)
        row = [0, 0, 0, 0, 0]  # queries, true, false, missed, possible
        row[0] = 1
        found = result.record.child_ref if result.status == "match" and result.record else None
        if found is not None and found == q.expected:
            row[1] = 1
        elif found is not None:
            row[2] = 1
        elif q.expected is not None:
            row[3] = 1
        if result.notice and result.status != "match":  # the possible-match notice
            row[4] = 1
        for key in ("all", q.kind):
            acc = counts.setdefault(key, [0, 0, 0, 0, 0])
            for j, v in enumerate(row):
                acc[j] += v
    return {k: Quality(*v) for k, v in counts.items()}
