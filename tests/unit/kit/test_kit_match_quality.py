"""A correctness bar for demographic matching on a small fixed generated set
(the full measurement, and FEBRL, is benchmarks/matching.py)."""

from __future__ import annotations

import pytest

from adapters.kit.match_quality import RATES, evaluate, generate_population, make_queries


@pytest.fixture(scope="module")
def quality():
    population = generate_population(400, seed=4)
    return evaluate(population, make_queries(population, 400, seed=5))


def test_never_names_the_wrong_child(quality) -> None:
    assert quality["all"].false_matches == 0
    for kind in ("stranger", "sibling"):  # nobody on file: no child may be named
        assert quality[kind].queries >= 15
        assert quality[kind].true_matches + quality[kind].false_matches == 0


def test_a_sibling_who_is_not_on_file_is_a_possible_match_at_most(quality) -> None:
    assert quality["sibling"].possible == quality["sibling"].queries


@pytest.mark.parametrize("kind", ["exact", "typo", "variant", "moved", "dob_digit", "dob_swap",
                                  "swapped", "no_postcode", "twin"])
def test_finds_the_child_despite_errors(quality, kind: str) -> None:
    assert quality[kind].queries >= 15
    assert quality[kind].recall == 1.0, quality[kind]


def test_recall_overall(quality) -> None:
    # A given name replaced while family name and date of birth stay is read as a
    # sibling (at most possible): those lookups are the misses; everything else is
    # found. Recall over the lookups without that corruption reaches the 0.97 bar.
    everything = quality["all"]
    assert everything.recall >= 0.95, everything
    replaced = quality["replaced"]
    others = (everything.true_matches - replaced.true_matches) / (
        everything.findable - replaced.findable)
    assert others >= 0.99
    assert quality["missing_given"].recall >= 0.9
    assert set(RATES) <= set(quality)
