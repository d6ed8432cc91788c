"""A child who moved house: names and date of birth agree exactly, the postcode
does not. Default: a possible match (the requester is asked to call). With
``moved_house = "match_if_unique"``: a match with a notice, only when exactly
one record has those names and that date of birth and nothing else comes close."""

from __future__ import annotations

from datetime import date

import pytest

from adapters.kit.matching import (
    MOVED_HOUSE_MATCH,
    MOVED_HOUSE_NOTICE,
    match_child,
    moved_house_record,
)
from adapters.kit.settings import KitSettings, SettingsError, settings_from_mapping
from adapters.kit.sources import Records

MOVED = {"given_name": "Amara", "family_name": "Okafor", "date_of_birth": "2015-03-12",
         "postcodes": ["HX7 5GQ"]}


def match(child, records, **kw):
    return match_child(child, Records(records), **kw)


def test_by_default_a_move_is_only_a_possible_match(make_record) -> None:
    result = match(MOVED, [make_record(nhs_number=None)])
    assert result.status == "no_match" and result.record is None
    assert "possible match" in result.notice


def test_when_enabled_a_unique_exact_record_matches_with_a_notice(make_record) -> None:
    result = match(MOVED, [make_record(nhs_number=None),
                           make_record(child_ref="C-2", given_name="Bola", family_name="Ade",
                                       date_of_birth=date(2014, 1, 1))],
                   moved_house=MOVED_HOUSE_MATCH)
    assert result.status == "match" and result.record.child_ref == "C-1"
    assert result.notice == MOVED_HOUSE_NOTICE and result.method == "demographics_moved"
    assert result.confidence == 0.8  # names and date of birth, no postcode points


def test_case_accents_and_punctuation_still_count_as_exact(make_record) -> None:
    asked = {**MOVED, "given_name": "AMARA", "family_name": "Okafór"}
    assert match(asked, [make_record(nhs_number=None)],
                 moved_house=MOVED_HOUSE_MATCH).status == "match"


def test_two_records_with_the_same_names_and_birthday_stay_possible(make_record) -> None:
    records = [make_record(nhs_number=None),
               make_record(child_ref="C-2", nhs_number=None, postcode="BD1 1AA")]
    result = match(MOVED, records, moved_house=MOVED_HOUSE_MATCH)
    assert result.status == "no_match" and "possible match" in result.notice


@pytest.mark.parametrize("change", [
    {"given_name": "Amarah"},            # a typo is not exact
    {"date_of_birth": "2015-12-03"},     # transposed is not exact
    {"given_name": "Okafor", "family_name": "Amara"},  # swapped is not exact
])
def test_anything_short_of_exact_stays_possible(make_record, change) -> None:
    result = match({**MOVED, **change}, [make_record(nhs_number=None)],
                   moved_house=MOVED_HOUSE_MATCH)
    assert result.status == "no_match"


def test_a_close_second_record_keeps_it_possible(make_record) -> None:
    sibling = make_record(child_ref="C-2", nhs_number=None, given_name="Amari",
                          postcode="BD1 1AA")  # same birthday, a similar name: scores 0.71
    result = match(MOVED, [make_record(nhs_number=None), sibling],
                   moved_house=MOVED_HOUSE_MATCH)
    assert result.status == "no_match" and "possible match" in result.notice


def test_a_different_nhs_number_rules_it_out(make_record) -> None:
    record = make_record(nhs_number="9434765919")
    assert moved_house_record({**MOVED, "nhs_number": "9990001014"}, [record]) is None
    assert match({**MOVED, "nhs_number": "9990001014"}, [record],
                 moved_house=MOVED_HOUSE_MATCH).status == "no_match"
    # an NHS number on one side only does not
    assert moved_house_record({**MOVED, "nhs_number": "9990001014"},
                              [make_record(nhs_number=None)]) is not None
    assert moved_house_record(MOVED, [record]) is record


def test_the_same_postcode_or_no_postcode_is_not_a_move(make_record) -> None:
    record = make_record(nhs_number=None)
    assert moved_house_record({**MOVED, "postcodes": ["LS6 2AB"]}, [record]) is None
    assert moved_house_record({**MOVED, "postcodes": []}, [record]) is None


def test_same_district_already_matched_and_is_unchanged(make_record) -> None:
    asked = {**MOVED, "postcodes": ["LS6 9ZZ"]}  # same district: 0.9, a match anyway
    result = match(asked, [make_record(nhs_number=None)], moved_house=MOVED_HOUSE_MATCH)
    assert result.status == "match" and result.method == "demographics"
    assert result.notice is None


def test_setting_defaults_to_possible_and_refuses_other_values() -> None:
    base = {"authority_id": "a", "name": "A", "jwks_url": "https://b.example/jwks.json",
            "broker_issuer": "federator", "csv_path": "x.csv"}
    assert settings_from_mapping(base).moved_house == "possible_match"
    assert settings_from_mapping({**base, "moved_house": "match_if_unique"}).moved_house == \
        "match_if_unique"
    with pytest.raises(SettingsError, match="moved_house: must be one of possible_match, "
                                            "match_if_unique"):
        KitSettings(**base, moved_house="always")
