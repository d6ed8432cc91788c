"""Measuring demographic matching: a generated population, lookups with the
errors real requests carry, and precision, recall and wrong-child answers.

Pure functions over generated data (Faker ``en_GB``, fixed seed), used by
``benchmarks/matching.py`` and by a unit test that holds matching to a bar.
Lookups carry no NHS number: they measure the demographic path.

The population: Faker names and postcodes, dates of birth over 18 years; 2%
of records have no given name; 4% of children have a twin on file (same
family name, date of birth and postcode; a similar given name where
:data:`SIMILAR_NAMES` has one, holly/molly).

The lookups, by kind (:data:`RATES`, per 100 lookups; the first kind takes
the rest): ``exact``; ``typo`` (one letter dropped, doubled, swapped or
replaced in the given or family name, short names included); ``replaced`` (the
given or family name replaced by another name); ``variant`` (a nickname or
other spelling from the kit's table); ``moved`` (another postcode);
``dob_digit`` (one digit of the date of birth wrong); ``dob_swap`` (day and
month swapped); ``missing_given`` (no given name in the lookup, or none on
the record); ``swapped`` (given and family name swapped over);
``no_postcode``; ``twin`` (a child whose twin is on file: the right one must
be found); ``sibling`` (a same-birthday sibling who is not on file, similar
name: no child may be named); ``stranger`` (not on file).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from faker import Faker

from adapters.kit.candidates import candidates, prepare_request
from adapters.kit.matching import MatchResult, index_of, match_child
from adapters.kit.names import variant_table
from adapters.kit.sources import ChildRecord, Records

#: Lookups per 100 of each kind; ``exact`` takes what is left.
RATES: dict[str, int] = {
    "typo": 12, "replaced": 5, "variant": 7, "moved": 10, "dob_digit": 8, "dob_swap": 5,
    "missing_given": 5, "swapped": 4, "no_postcode": 5, "twin": 5, "sibling": 5,
    "stranger": 5,
}
KINDS = ("exact", *RATES)
#: Same-birthday siblings with names one or two letters apart.
SIMILAR_NAMES = (("Holly", "Molly"), ("Charlie", "Charlize"), ("Jack", "Jake"),
                 ("Ella", "Bella"), ("Mason", "Jason"), ("Lily", "Lila"), ("Alfie", "Albie"),
                 ("Hayden", "Jayden"), ("Amara", "Amari"), ("Finn", "Flynn"))
MISSING_GIVEN_ON_RECORD = 0.02
TWINS = 0.04


@dataclass(frozen=True)
class Query:
    kind: str
    child: dict[str, Any]
    expected: str | None  # child_ref of the right record, None: nobody on file


@dataclass
class Quality:
    queries: int = 0
    true_matches: int = 0
    false_matches: int = 0  # the wrong child named
    missed: int = 0
    possible: int = 0  # answered no_match with the possible-match notice
    in_candidates: int = 0  # the right record among the index's candidates
    findable: int = 0  # lookups with a right record

    @property
    def precision(self) -> float:
        matched = self.true_matches + self.false_matches
        return self.true_matches / matched if matched else 1.0

    @property
    def recall(self) -> float:
        return self.true_matches / self.findable if self.findable else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def pairs_completeness(self) -> float:
        return self.in_candidates / self.findable if self.findable else 1.0

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "precision": self.precision, "recall": self.recall,
                "f1": self.f1, "pairs_completeness": self.pairs_completeness}


@dataclass
class Names:
    """Pools of names drawn once from Faker (fast for a million records)."""

    given: list[str] = field(default_factory=list)
    family: list[str] = field(default_factory=list)
    postcodes: list[str] = field(default_factory=list)


def name_pools(seed: int, size: int = 4000) -> Names:
    fake = Faker("en_GB")
    fake.seed_instance(seed)
    return Names([fake.first_name() for _ in range(size)],
                 [fake.last_name() for _ in range(size)],
                 [fake.postcode() for _ in range(size * 5)])


def _born(rng: random.Random) -> date:
    return date(2008, 1, 1) + timedelta(days=rng.randrange(18 * 365))


def generate_population(n: int, *, seed: int = 4, pools: Names | None = None) -> Records:
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    pools = pools or name_pools(seed)
    similar = dict(SIMILAR_NAMES)
    people: list[ChildRecord] = []
    while len(people) < n:
        i = len(people)
        given = rng.choice([a for a, _ in SIMILAR_NAMES]) if rng.random() < 0.05 else (
            rng.choice(pools.given))
        record = ChildRecord(child_ref=f"C-{i}", nhs_number=None,
                             given_name="" if rng.random() < MISSING_GIVEN_ON_RECORD else given,
                             family_name=rng.choice(pools.family), date_of_birth=_born(rng),
                             postcode=rng.choice(pools.postcodes))
        people.append(record)
        if rng.random() < TWINS and len(people) < n and record.given_name:
            twin = similar.get(record.given_name) or rng.choice(pools.given)
            if twin != record.given_name:
                people.append(ChildRecord(child_ref=f"C-{i + 1}", nhs_number=None,
                                          given_name=twin, family_name=record.family_name,
                                          date_of_birth=record.date_of_birth,
                                          postcode=record.postcode))
    return Records(people)


def _typo(name: str, rng: random.Random) -> str:
    if len(name) < 2:
        return name + "a"
    i = rng.randrange(1, len(name))
    how = rng.choice(("drop", "swap", "double", "replace"))
    if how == "drop" and len(name) > 3:
        return name[:i] + name[i + 1:]
    if how == "swap" and i < len(name) - 1:
        return name[:i] + name[i + 1] + name[i] + name[i + 2:]
    if how == "double":
        return name[:i] + name[i] + name[i:]
    letters = [c for c in "abcdefghijklmnopqrstuvwxyz" if c != name[i].lower()]
    return name[:i] + rng.choice(letters) + name[i + 1:]


def _dob_digit(born: date, rng: random.Random) -> str:
    digits = list(born.isoformat().replace("-", ""))
    i = rng.randrange(2, 8)
    digits[i] = rng.choice([d for d in "0123456789" if d != digits[i]])
    s = "".join(digits)
    return f"{s[:4]}-{s[4:6]}-{s[6:]}"  # may be no real date: as typed


def _variants() -> dict[str, list[str]]:
    lines: dict[int, list[str]] = {}
    for name, groups in variant_table().items():
        for g in groups:
            lines.setdefault(g, []).append(name)
    out: dict[str, list[str]] = {}
    for names in lines.values():
        for name in names:
            out.setdefault(name, []).extend(n for n in names if n != name)
    return out


def _kinds(n: int) -> list[str]:
    per100 = [k for k, rate in RATES.items() for _ in range(rate)]
    per100 += ["exact"] * (100 - len(per100))
    return [per100[(i * 37) % 100] for i in range(n)]  # spread through the run


def make_queries(population: Sequence[ChildRecord], n: int, *, seed: int = 5,
                 pools: Names | None = None) -> list[Query]:
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    pools = pools or name_pools(seed + 1000)
    variants = _variants()
    similar = dict(SIMILAR_NAMES) | {b: a for a, b in SIMILAR_NAMES}
    twins = _twins(population)
    on_file = {(r.given_name, r.family_name, r.date_of_birth) for r in population}
    named = [r for r in population if r.given_name]
    queries = []
    for kind in _kinds(n):
        if kind == "stranger":
            queries.append(Query(kind, {"given_name": rng.choice(pools.given),
                                        "family_name": rng.choice(pools.family),
                                        "date_of_birth": _born(rng).isoformat(),
                                        "postcodes": [rng.choice(pools.postcodes)]}, None))
            continue
        r = rng.choice(twins if kind == "twin" and twins else named)
        if kind == "missing_given" and rng.random() < 0.5:
            r = rng.choice([x for x in population if not x.given_name] or named)
        assert r.date_of_birth is not None
        given: str | None = r.given_name or None
        family, born = r.family_name, r.date_of_birth.isoformat()
        postcodes = [r.postcode or ""]
        expected: str | None = r.child_ref
        if kind == "typo":
            if rng.random() < 0.5:
                family = _typo(family, rng)
            else:
                given = _typo(r.given_name, rng)
        elif kind == "replaced":
            if rng.random() < 0.5:
                given = rng.choice(pools.given)
            else:
                family = rng.choice(pools.family)
        elif kind == "variant":
            options = variants.get(r.given_name.casefold())
            given = rng.choice(sorted(options)).capitalize() if options else _typo(
                r.given_name, rng)
        elif kind == "moved":
            postcodes = [rng.choice(pools.postcodes)]
        elif kind == "dob_digit":
            born = _dob_digit(r.date_of_birth, rng)
        elif kind == "dob_swap":
            d = r.date_of_birth
            if d.day <= 12 and d.day != d.month:
                born = f"{d.year:04d}-{d.day:02d}-{d.month:02d}"
        elif kind == "missing_given":  # not asked, or not on the record (asked all the same)
            given = None if r.given_name else rng.choice(pools.given)
        elif kind == "swapped":
            given, family = family, r.given_name
        elif kind == "no_postcode":
            postcodes = []
        elif kind == "sibling":
            given = similar.get(r.given_name) or rng.choice(pools.given)
            if (given, family, r.date_of_birth) in on_file or given == r.given_name:
                continue
            expected = None
        queries.append(Query(kind, {"given_name": given, "family_name": family,
                                    "date_of_birth": born, "postcodes": postcodes}, expected))
    return queries


def _twins(population: Sequence[ChildRecord]) -> list[ChildRecord]:
    seen: dict[tuple[Any, ...], list[ChildRecord]] = {}
    for r in population:
        seen.setdefault((r.family_name, r.date_of_birth, r.postcode), []).append(r)
    return [r for group in seen.values() if len(group) > 1 for r in group if r.given_name]


Matcher = Callable[[dict[str, Any]], MatchResult]


def evaluate(population: Sequence[ChildRecord], queries: Sequence[Query], *,
             matcher: Matcher | None = None, **match_kwargs: Any) -> dict[str, Quality]:
    """Quality overall (``"all"``) and per kind of lookup. ``matcher`` replaces
    the kit's ``match_child(child, population, **match_kwargs)``."""
    index = index_of(population)
    refs = {r.child_ref: i for i, r in enumerate(population)}
    counts: dict[str, Quality] = {}
    for q in queries:
        child = {"nhs_number": None, **q.child}
        result = matcher(child) if matcher else match_child(child, population, **match_kwargs)
        found = result.record.child_ref if result.status == "match" and result.record else None
        for key in ("all", q.kind):
            acc = counts.setdefault(key, Quality())
            acc.queries += 1
            if q.expected is not None:
                acc.findable += 1
                if refs[q.expected] in candidates(index, prepare_request(child)):
                    acc.in_candidates += 1
            if found is not None and found == q.expected:
                acc.true_matches += 1
            elif found is not None:
                acc.false_matches += 1
            elif q.expected is not None:
                acc.missed += 1
            if result.notice and result.status != "match":
                acc.possible += 1
    return counts
