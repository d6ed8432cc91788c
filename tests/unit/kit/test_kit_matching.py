from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from adapters.kit.matching import (
    POSSIBLE_MATCH_NOTICE,
    demographic_score,
    dob_score,
    match_child,
    name_similarity,
    normalise_name,
    normalise_nhs_number,
    normalise_postcode,
)
from adapters.kit.sources import ChildRecord


def child(**kw):
    base = {"nhs_number": None, "given_name": "Amara", "family_name": "Okafor",
            "date_of_birth": "2015-03-12", "postcodes": ["LS6 2AB"]}
    base.update(kw)
    return base


def test_nhs_number_exact_wins_with_full_confidence(make_record):
    records = [make_record(child_ref="A", nhs_number="111 222 3333"),
               make_record(child_ref="B", nhs_number="943 476 5919", given_name="Other")]
    result = match_child({"nhs_number": "9434765919", "postcodes": []}, records)
    assert result.status == "match"
    assert result.confidence == 1.0
    assert result.record is records[1]
    assert result.method == "nhs_number"


def test_nhs_number_spaces_and_hyphens_are_ignored(make_record):
    records = [make_record(nhs_number="9434765919")]
    assert match_child({"nhs_number": "943-476 5919", "postcodes": []}, records).status == "match"
    assert normalise_nhs_number(" 943 476 5919 ") == "9434765919"


def test_nhs_number_alone_that_matches_nothing_is_no_match(make_record):
    result = match_child({"nhs_number": "1111111111", "postcodes": []}, [make_record()])
    assert result.status == "no_match"
    assert result.record is None
    assert result.notice is None


def test_unknown_nhs_number_still_matches_on_demographics(make_record):
    records = [make_record(nhs_number="9434765919")]
    result = match_child(child(nhs_number="4010232137"), records)
    assert result.status == "match"
    assert result.method == "demographics"
    assert result.confidence >= 0.85


def test_record_without_nhs_number_matches_on_demographics(make_record):
    result = match_child(child(), [make_record(nhs_number=None)])
    assert result.status == "match"
    assert result.confidence == 1.0


def test_name_normalisation_ignores_case_accents_punctuation():
    assert normalise_name("Zoë O'Neil-Smith") == normalise_name("ZOE oneil smith")
    assert name_similarity("Chloé", "chloe") == 1.0
    assert normalise_postcode(" ls6  2ab") == "LS62AB"


def test_accented_and_punctuated_request_matches(make_record):
    record = make_record(nhs_number=None, given_name="Zoë", family_name="O'Neil")
    result = match_child(child(given_name="ZOE", family_name="O Neil", postcodes=["ls62ab"]),
                         [record])
    assert result.status == "match"
    assert result.confidence == 1.0


def test_small_typo_still_matches(make_record):
    result = match_child(child(family_name="Okafur"), [make_record(nhs_number=None)])
    assert result.status == "match"
    assert 0.85 <= result.confidence < 1.0


def test_transposed_day_and_month_score_lower_than_exact():
    assert dob_score(date(2015, 3, 12), date(2015, 12, 3)) == 0.75
    assert dob_score(date(2015, 3, 12), date(2015, 3, 12)) == 1.0
    assert dob_score(date(2015, 3, 12), date(2016, 12, 3)) == 0.0


def test_transposed_dob_is_a_match_with_lower_confidence(make_record):
    record = make_record(nhs_number=None)
    exact = match_child(child(), [record])
    swapped = match_child(child(date_of_birth="2015-12-03"), [record])
    assert swapped.status == "match"
    assert swapped.confidence < exact.confidence


def test_wrong_dob_is_only_a_possible_match_with_notice(make_record):
    result = match_child(child(date_of_birth="2014-01-01"), [make_record(nhs_number=None)],
                         authority="Example Council")
    assert result.status == "no_match"
    assert result.record is None
    assert result.notice == POSSIBLE_MATCH_NOTICE.format(authority="Example Council")
    assert 0.6 <= result.confidence < 0.85


def test_different_child_is_no_match_without_notice(make_record):
    result = match_child(
        child(given_name="Oliver", family_name="Brown", date_of_birth="2010-07-07",
              postcodes=["BD1 1AA"]),
        [make_record(nhs_number=None)],
    )
    assert result.status == "no_match"
    assert result.notice is None
    assert result.confidence == 0.0


def test_thresholds_decide_the_status(make_record):
    record = make_record(nhs_number=None)
    asked = child(family_name="Okafur")
    score = demographic_score(asked, record)
    assert match_child(asked, [record], match_threshold=score).status == "match"
    above = match_child(asked, [record], match_threshold=score + 0.01, possible_threshold=score)
    assert above.status == "no_match" and above.notice
    below = match_child(asked, [record], match_threshold=0.99, possible_threshold=score + 0.01)
    assert below.status == "no_match" and below.notice is None


def test_no_postcode_caps_the_score_but_exact_name_and_dob_still_match(make_record):
    result = match_child(child(postcodes=[]), [make_record(nhs_number=None)])
    assert result.status == "match"
    assert result.confidence == 0.9


def test_any_of_the_childs_postcodes_counts(make_record):
    result = match_child(child(postcodes=["BD1 1AA", "LS6 2AB"]), [make_record(nhs_number=None)])
    assert result.confidence == 1.0


def test_two_equally_good_records_are_not_a_match(make_record):
    records = [make_record(child_ref="A", nhs_number=None),
               make_record(child_ref="B", nhs_number=None)]
    result = match_child(child(), records)
    assert result.status == "no_match"
    assert result.notice


def test_best_of_several_records_is_chosen(make_record):
    records = [make_record(child_ref="A", nhs_number=None, given_name="Ada"),
               make_record(child_ref="B", nhs_number=None)]
    assert match_child(child(), records).record is records[1]


def test_no_names_no_demographic_match(make_record):
    result = match_child({"date_of_birth": "2015-03-12", "postcodes": ["LS6 2AB"]},
                         [make_record(nhs_number=None)])
    assert result.status == "no_match"


names = st.text(alphabet=st.characters(categories=("L",)), min_size=1, max_size=20).filter(
    lambda s: normalise_name(s) != ""
)
postcodes = st.from_regex(r"[A-Z]{1,2}[0-9]{1,2} [0-9][A-Z]{2}", fullmatch=True)


@given(given_name=names, family_name=names, dob=st.dates(), postcode=postcodes)
def test_a_record_always_matches_itself_at_full_confidence(given_name, family_name, dob,
                                                           postcode):
    record = ChildRecord("R", None, given_name, family_name, dob, postcode)
    asked = {"given_name": given_name, "family_name": family_name,
             "date_of_birth": dob.isoformat(), "postcodes": [postcode]}
    result = match_child(asked, [record])
    assert result.status == "match"
    assert result.confidence == 1.0


@given(given_name=names, family_name=names, dob=st.dates(), postcode=postcodes,
       other_given=names, other_family=names, other_dob=st.dates())
def test_score_is_between_zero_and_one(given_name, family_name, dob, postcode,
                                       other_given, other_family, other_dob):
    record = ChildRecord("R", None, given_name, family_name, dob, postcode)
    asked = {"given_name": other_given, "family_name": other_family,
             "date_of_birth": other_dob.isoformat(), "postcodes": [postcode]}
    assert 0.0 <= demographic_score(asked, record) <= 1.0


@given(nhs=st.from_regex(r"[0-9]{10}", fullmatch=True), spaces=st.booleans())
def test_nhs_number_match_is_whatever_the_demographics(nhs, spaces):
    record = ChildRecord("R", nhs, "Someone", "Else", date(2001, 1, 1), "ZZ99 3AA")
    asked_nhs = f"{nhs[:3]} {nhs[3:6]} {nhs[6:]}" if spaces else nhs
    result = match_child({"nhs_number": asked_nhs, "given_name": "Amara",
                          "family_name": "Okafor", "postcodes": []}, [record])
    assert (result.status, result.confidence) == ("match", 1.0)


def test_a_different_given_name_is_not_a_match(make_record):
    # A twin: same family name, date of birth and postcode; another given name.
    result = match_child(child(given_name="Ada"), [make_record(nhs_number=None)])
    assert result.status == "no_match"
    assert result.record is None


def test_swapped_given_and_family_names_still_match(make_record):
    result = match_child(child(given_name="Okafor", family_name="Amara"),
                         [make_record(nhs_number=None)])
    assert result.status == "match"
    assert result.confidence < 1.0
