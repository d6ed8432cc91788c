"""Candidate narrowing (adapters.kit.candidates) never changes what the matcher
answers: on generated populations the indexed matcher returns exactly what the
full scan returns, and every record it skips scores below the bound."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.kit import candidates as c
from adapters.kit import matching
from adapters.kit.match_quality import KINDS, evaluate, generate_population, make_queries
from adapters.kit.matching import MOVED_HOUSE_MATCH, match_child
from adapters.kit.sources import COLUMNS, CsvSource, Records


@pytest.fixture(scope="module")
def population() -> Records:
    """Crowded on purpose: 400 children born within 60 days at 30 postcodes, so
    that buckets are full and many records sit near the thresholds."""
    people = generate_population(400, seed=11)
    rng = random.Random(3)
    postcodes = [r.postcode for r in people[:30]]
    for i, r in enumerate(people):
        people[i] = replace(r, date_of_birth=date(2015, 1, 1) + timedelta(days=rng.randrange(60)),
                            postcode=rng.choice(postcodes))
    # NHS numbers (one repeated: the first wins, as in a scan), twins, no postcode,
    # no date of birth, day/month-transposable birthdays.
    for i in range(0, 400, 7):
        people[i] = replace(people[i], nhs_number=f"999{i:07d}")
    people[10] = replace(people[10], nhs_number=people[0].nhs_number)
    for i in range(1, 400, 23):
        people.append(replace(people[i], child_ref=f"T-{i}", given_name=people[i].given_name + "a"))
    for i in range(2, 400, 19):
        people[i] = replace(people[i], postcode=None)
    for i in range(3, 400, 31):
        people[i] = replace(people[i], date_of_birth=None)
    for i in range(4, 400, 17):
        people[i] = replace(people[i], date_of_birth=date(2015, 2, 1 + i % 12))
    rng.shuffle(people)
    return Records(people)


@pytest.fixture(autouse=True, scope="module")
def remembered_scores() -> Iterator[None]:
    """Each (query, record) is scored once for real and remembered, so comparing
    many settings stays quick; both matchers see the same real scores."""
    real = matching.demographic_score
    seen: dict[tuple[int, int], tuple[float, Any, Any]] = {}

    def score(child: Any, record: Any) -> float:
        key = (id(child), id(record))
        if key not in seen:  # the pair is kept too, so that no id is reused
            seen[key] = (real(child, record), child, record)
        return seen[key][0]

    matching.demographic_score = score  # type: ignore[assignment]
    yield
    matching.demographic_score = real  # type: ignore[assignment]


_QUERIES: dict[int, list[dict]] = {}


def queries(population: Records) -> list[dict]:
    if id(population) in _QUERIES:
        return _QUERIES[id(population)]
    born = [r for r in population if r.date_of_birth is not None]
    asked = [{"nhs_number": None, **q.child}
             for q in make_queries(born, 20 * len(KINDS), seed=12)]
    asked += [{"nhs_number": r.nhs_number, "given_name": "X", "family_name": "Y",
               "date_of_birth": "2010-01-01", "postcodes": []}
              for r in population[:100] if r.nhs_number]
    asked += [{"nhs_number": "9990000000", "given_name": r.given_name,
               "family_name": r.family_name, "date_of_birth": None,
               "postcodes": [r.postcode or ""]} for r in population[200:230]]
    asked.append({"given_name": "Zed", "family_name": "Okafor",
                  "date_of_birth": "2012-07-04", "postcodes": ["LS6 2AB", "HX7 5GQ"]})
    _QUERIES[id(population)] = asked
    return asked


def outcome(result) -> tuple:
    return (result.status, result.confidence, result.record.child_ref if result.record else None,
            result.notice, result.method)


@pytest.mark.parametrize("thresholds", [(0.85, 0.6), (0.85, 0.56), (0.9, 0.75),
                                        (0.8, 0.52), (0.85, 0.5), (0.7, 0.3)])
@pytest.mark.parametrize("moved_house", ["possible_match", MOVED_HOUSE_MATCH])
def test_indexed_matcher_returns_exactly_what_the_full_scan_returns(
        population: Records, thresholds: tuple[float, float], moved_house: str) -> None:
    match, possible = thresholds
    for child in queries(population):
        kwargs = {"match_threshold": match, "possible_threshold": possible,
                  "moved_house": moved_house}
        assert outcome(match_child(child, population, **kwargs)) == outcome(
            match_child(child, population, narrow=False, **kwargs)), child


def test_narrowing_scores_only_a_few_records(population: Records) -> None:
    index = population.match_index
    found = [c.candidates(index, q, 0.6) for q in queries(population)[:80]]
    assert all(f is not None for f in found)
    assert max(len(f or ()) for f in found) < len(population) / 4


def test_skipped_records_score_below_the_bound(population: Records) -> None:
    index = population.match_index
    for child in queries(population)[:120]:
        for threshold, bound in ((0.6, c.bound_without_dob_or_postcode()),
                                 (0.52, c.bound_without_dob_or_district())):
            kept = set(c.candidates(index, child, threshold) or ())
            worst = max((matching.demographic_score(child, r) for i, r in enumerate(population)
                         if i not in kept), default=0.0)
            assert worst <= bound + 1e-9 < threshold


def test_bounds_follow_the_weights() -> None:
    assert c.bound_without_dob_or_postcode() == pytest.approx(0.55)
    assert c.bound_without_dob_or_district() == pytest.approx(0.50625)
    index = Records().match_index
    assert c.candidates(index, {"date_of_birth": "2015-01-01"}, 0.5) is None  # scan all


def test_the_quality_benchmark_is_the_same_either_way() -> None:
    people = generate_population(200, seed=4)
    asked = make_queries(people, 6 * len(KINDS), seed=5)
    for moved_house in ("possible_match", MOVED_HOUSE_MATCH):
        narrowed = evaluate(people, asked, match_threshold=0.85, possible_threshold=0.6,
                            moved_house=moved_house)
        full = evaluate(people, asked, match_threshold=0.85, possible_threshold=0.6,
                        narrow=False, moved_house=moved_house)
        assert narrowed == full


def test_family_key_and_transposed_dates() -> None:
    assert c.family_key("Okafor") == c.family_key("OKAFOUR") == c.family_key("Ókafor") == "okfr"
    assert c.family_key("O'Neill") == c.family_key("oneil")
    assert c.family_key("") == ""
    assert c.transposed(date(2015, 3, 12)) == date(2015, 12, 3)
    assert c.transposed(date(2015, 3, 13)) is None and c.transposed(date(2015, 3, 3)) is None


def test_csv_reload_rebuilds_the_index(tmp_path: Path) -> None:
    def row(ref: str, given: str, born: str) -> str:
        values = {"child_ref": ref, "given_name": given, "family_name": "Okafor",
                  "date_of_birth": born, "postcode": "LS6 2AB", "shielded": "false",
                  "sensitive": "false"}
        return ",".join(values.get(col, "") for col in COLUMNS)

    path = tmp_path / "children.csv"
    path.write_text(",".join(COLUMNS) + "\n" + row("C-1", "Amara", "2015-03-12") + "\n")
    source = CsvSource(path)
    first = source.records()
    assert first.match_index.by_dob == {date(2015, 3, 12): [0]}  # built at load
    asked = {"given_name": "Bola", "family_name": "Okafor", "date_of_birth": "2016-05-01",
             "postcodes": ["LS6 2AB"]}
    assert match_child(asked, source.records()).status == "no_match"
    path.write_text(path.read_text() + row("C-2", "Bola", "2016-05-01") + "\n")
    again = source.records()
    assert again is not first and again.match_index.by_dob[date(2016, 5, 1)] == [1]
    result = match_child(asked, again)
    assert result.status == "match" and result.record.child_ref == "C-2"
