"""A correctness bar for demographic matching on a small fixed generated set
(the full measurement is benchmarks/matching.py)."""

from __future__ import annotations

import pytest

from adapters.kit.match_quality import KINDS, evaluate, generate_population, make_queries


@pytest.fixture(scope="module")
def quality():
    population = generate_population(120, seed=4)
    queries = make_queries(population, 10 * len(KINDS), seed=5)
    return evaluate(population, queries, match_threshold=0.85, possible_threshold=0.6)


def test_never_matches_the_wrong_child(quality) -> None:
    assert quality["all"].false_matches == 0
    assert quality["all"].precision == 1.0
    assert quality["stranger"].true_matches + quality["stranger"].false_matches == 0


@pytest.mark.parametrize(("kind", "bar"), [
    ("exact", 1.0), ("dob_transposed", 0.9), ("swapped", 0.9), ("no_postcode", 0.9),
    ("typo", 0.7), ("variant", 0.6),
])
def test_finds_the_child_despite_errors(quality, kind: str, bar: float) -> None:
    assert quality[kind].queries == 10
    assert quality[kind].recall >= bar, quality[kind]


def test_a_child_who_moved_is_a_possible_match_not_silence(quality) -> None:
    moved = quality["moved"]
    assert moved.false_matches == 0
    assert moved.true_matches + moved.possible == moved.queries
