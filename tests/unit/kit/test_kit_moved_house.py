"""A child who moved house: names and date of birth agree, the postcode agrees
in nothing. Default (``moved_house = "match_if_unique"``): the probability
decides, and a match says the child may have moved. With ``"possible_match"``:
at most a possible match (the requester is asked to call)."""

from __future__ import annotations

from datetime import date

import pytest

from adapters.kit.matching import (
    MOVED_HOUSE_MATCH,
    MOVED_HOUSE_NOTICE,
    MOVED_HOUSE_POSSIBLE,
    match_child,
)
from adapters.kit.settings import KitSettings, SettingsError, settings_from_mapping
from adapters.kit.sources import Records

MOVED = {"given_name": "Amara", "family_name": "Okafor", "date_of_birth": "2015-03-12",
         "postcodes": ["HX7 5GQ"]}


def match(child, records, **kw):
    return match_child(child, Records(records), **kw)


def test_by_default_a_move_is_a_match_that_says_so(make_record) -> None:
    result = match(MOVED, [make_record(nhs_number=None),
                           make_record(child_ref="C-2", given_name="Bola", family_name="Ade",
                                       date_of_birth=date(2014, 1, 1))])
    assert result.status == "match" and result.record.child_ref == "C-1"
    assert result.notice == MOVED_HOUSE_NOTICE and result.method == "demographics_moved"
    assert result.matched_on == ("given_name", "family_name", "date_of_birth")
    assert result.confidence >= 0.99


def test_when_set_to_possible_a_move_is_only_a_possible_match(make_record) -> None:
    result = match(MOVED, [make_record(nhs_number=None)], moved_house=MOVED_HOUSE_POSSIBLE)
    assert result.status == "no_match" and result.record is None
    assert "possible match" in result.notice and result.ask_for == ("postcode",)


def test_two_records_with_the_same_names_and_birthday_stay_possible(make_record) -> None:
    records = [make_record(nhs_number=None),
               make_record(child_ref="C-2", nhs_number=None, postcode="BD1 1AA")]
    result = match(MOVED, records, moved_house=MOVED_HOUSE_MATCH)
    assert result.status == "no_match" and "possible match" in result.notice


def test_a_move_and_a_wrong_birthday_is_not_a_match(make_record) -> None:
    result = match({**MOVED, "date_of_birth": "2011-07-30"}, [make_record(nhs_number=None)])
    assert result.status == "no_match"


def test_a_different_nhs_number_rules_it_out(make_record) -> None:
    record = make_record(nhs_number="9434765919")
    assert match({**MOVED, "nhs_number": "9990001014"}, [record]).status == "no_match"
    # an NHS number on one side only does not
    assert match({**MOVED, "nhs_number": "9990001014"},
                 [make_record(nhs_number=None)]).status == "match"


def test_same_district_is_not_a_move(make_record) -> None:
    asked = {**MOVED, "postcodes": ["LS6 9ZZ"]}
    for mode in (MOVED_HOUSE_MATCH, MOVED_HOUSE_POSSIBLE):
        result = match(asked, [make_record(nhs_number=None)], moved_house=mode)
        assert result.status == "match" and result.method == "demographics"
        assert result.notice is None


def test_setting_defaults_to_match_if_unique_and_refuses_other_values() -> None:
    base = {"authority_id": "a", "name": "A", "jwks_url": "https://b.example/jwks.json",
            "broker_issuer": "federator", "csv_path": "x.csv",
            "record_ref_key": "k" * 32}
    assert settings_from_mapping(base).moved_house == "match_if_unique"
    assert settings_from_mapping({**base, "moved_house": "possible_match"}).moved_house == \
        "possible_match"
    with pytest.raises(SettingsError, match="moved_house: must be one of possible_match, "
                                            "match_if_unique"):
        KitSettings(**base, moved_house="always")
