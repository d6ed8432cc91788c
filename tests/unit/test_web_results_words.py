"""The results page says how each authority knew the child, in words."""

from __future__ import annotations

import pytest

from federator.web.results import how_matched, results_view


@pytest.mark.parametrize(("authority", "words"), [
    ({"outcome": "match", "matched_on": ["nhs_number"]}, "Matched on NHS number"),
    ({"outcome": "match", "matched_on": ["given_name", "family_name", "date_of_birth",
                                         "postcode"]},
     "Matched on name, date of birth and postcode"),
    ({"outcome": "match", "matched_on": ["family_name", "date_of_birth"]},
     "Matched on last name and date of birth"),
    ({"outcome": "no_match", "ask_for": ["nhs_number", "postcode"]},
     "A possible match, not certain enough to share: the NHS number and postcode would "
     "settle it"),
    ({"outcome": "match"}, None),
    ({"outcome": "no_match"}, None),
    ({"outcome": "timeout", "matched_on": ["nhs_number"]}, None),
])
def test_how_matched(authority, words) -> None:
    assert how_matched(authority) == words


def test_the_page_view_carries_the_words_per_authority() -> None:
    view = results_view({"authorities": [
        {"id": "a", "name": "Leeds", "outcome": "match", "matched_on": ["nhs_number"]},
        {"id": "b", "name": "York", "outcome": "no_match"}]})
    assert [a["how"] for a in view["authorities"]] == ["Matched on NHS number", None]


def test_an_authority_that_did_not_answer_comes_with_the_registrys_contact() -> None:
    view = results_view({"authorities": [
        {"id": "a", "name": "Leeds", "outcome": "timeout"},
        {"id": "b", "name": "York", "outcome": "match"},
        {"id": "c", "name": "Hull", "outcome": "error"}]},
        {"a": "Leeds Front Door\n 0113 000 0000 \n", "b": "York desk"})
    assert [(m["name"], m["contact"]) for m in view["missing"]] == [
        ("Leeds", ["Leeds Front Door", "0113 000 0000"]), ("Hull", [])]
