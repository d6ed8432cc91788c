from __future__ import annotations

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.kit.candidates import build_index, prepare_record, prepare_request
from adapters.kit.matching import (
    AMBIGUITY_BITS,
    POSSIBLE_MATCH_NOTICE,
    compare,
    different_nhs_numbers,
    is_sibling,
    match_child,
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


# --------------------------------------------------------------------------
# NHS number
# --------------------------------------------------------------------------


def test_nhs_number_exact_wins_with_full_confidence(make_record):
    records = [make_record(child_ref="A", nhs_number="111 222 3333"),
               make_record(child_ref="B", nhs_number="943 476 5919", given_name="Other")]
    result = match_child({"nhs_number": "9434765919", "postcodes": []}, records)
    assert result.status == "match"
    assert result.confidence == 1.0
    assert result.record is records[1]
    assert result.method == "nhs_number"
    assert result.matched_on == ("nhs_number",)


def test_nhs_number_spaces_and_hyphens_are_ignored(make_record):
    records = [make_record(nhs_number="9434765919")]
    assert match_child({"nhs_number": "943-476 5919", "postcodes": []}, records).status == "match"
    assert normalise_nhs_number(" 943 476 5919 ") == "9434765919"


def test_nhs_number_alone_that_matches_nothing_is_no_match(make_record):
    result = match_child({"nhs_number": "1111111111", "postcodes": []}, [make_record()])
    assert result.status == "no_match"
    assert result.record is None
    assert result.notice is None


def test_two_valid_nhs_numbers_that_differ_are_two_children(make_record):
    # Everything else agrees: still not a match, and not even a possible one.
    records = [make_record(nhs_number="9434765919")]
    result = match_child(child(nhs_number="4010232137"), records)
    assert (result.status, result.notice, result.confidence) == ("no_match", None, 0.0)
    assert different_nhs_numbers(prepare_request(child(nhs_number="4010232137")),
                                 prepare_record(records[0]))


def test_an_invalid_or_absent_nhs_number_does_not_rule_a_record_out(make_record):
    records = [make_record(nhs_number="9434765919")]
    for nhs in ("9434765918", "12345", None):  # bad check digit, too short, none
        result = match_child(child(nhs_number=nhs), records)
        assert result.status == "match" and result.method == "demographics", nhs
    result = match_child(child(nhs_number="4010232137"), [make_record(nhs_number=None)])
    assert result.status == "match"


# --------------------------------------------------------------------------
# Demographics
# --------------------------------------------------------------------------


def test_exact_demographics_match(make_record):
    result = match_child(child(), [make_record(nhs_number=None)])
    assert result.status == "match" and result.confidence == 1.0
    assert result.matched_on == ("given_name", "family_name", "date_of_birth", "postcode")
    assert result.ask_for == ()


def test_name_normalisation_ignores_case_accents_punctuation():
    assert normalise_name("Zoë O'Neil-Smith") == normalise_name("ZOE oneil smith")
    assert normalise_postcode(" ls6  2ab") == "LS62AB"


def test_accented_and_punctuated_request_matches(make_record):
    record = make_record(nhs_number=None, given_name="Zoë", family_name="O'Neil")
    result = match_child(child(given_name="ZOE", family_name="O Neil", postcodes=["ls62ab"]),
                         [record])
    assert result.status == "match" and result.confidence == 1.0


def test_a_lookalike_letter_from_another_script_is_the_same_name(make_record):
    record = make_record(nhs_number=None, given_name="Rosie")
    cyrillic = "R\u043esie"  # Cyrillic small letter o
    latin = match_child(child(given_name="Rosie"), [record])
    lookalike = match_child(child(given_name=cyrillic), [record])
    assert lookalike.status == "match" and lookalike.confidence == latin.confidence
    index = build_index([record])
    assert compare(prepare_request(child(given_name=cyrillic)), prepare_record(record),
                   index).given == "exact"


def test_one_letter_wrong_in_a_short_name_still_matches(make_record):
    for asked, held in (("Lilq", "Lily"), ("Jorn", "John")):
        result = match_child(child(given_name=asked), [make_record(nhs_number=None,
                                                                   given_name=held)])
        assert result.status == "match", asked
        assert 0.99 <= result.confidence <= 1.0


def test_a_typo_match_is_less_certain_than_an_exact_one(make_record):
    record = make_record(nhs_number=None)
    index = build_index([record])
    exact = compare(prepare_request(child()), prepare_record(record), index)
    typo = compare(prepare_request(child(family_name="Okafur")), prepare_record(record), index)
    assert typo.family == "close" and typo.bits < exact.bits


def test_missing_fields_neither_help_nor_sink(make_record):
    record = make_record(nhs_number=None)
    index = build_index([record])
    full = compare(prepare_request(child()), prepare_record(record), index)
    no_postcode = compare(prepare_request(child(postcodes=[])), prepare_record(record), index)
    no_given = compare(prepare_request(child(given_name=None)), prepare_record(record), index)
    no_dob = compare(prepare_request(child(date_of_birth=None)), prepare_record(record), index)
    assert no_postcode.postcode is None and no_given.given is None and no_dob.dob is None
    weights = {"postcode": full.bits - no_postcode.bits, "given": full.bits - no_given.bits,
               "dob": full.bits - no_dob.bits}
    assert all(w > 0 for w in weights.values())  # each was evidence when present
    # and the others' weights are untouched by a missing one
    assert no_postcode.bits + weights["postcode"] == full.bits
    assert match_child(child(postcodes=[]), [record]).status == "match"
    assert match_child(child(given_name=None), [record]).status == "match"


def test_wrong_dob_and_postcode_is_only_a_possible_match_with_notice(make_record):
    # names right, date of birth wrong, postcode in the same sector only
    result = match_child(child(date_of_birth="2014-01-01", postcodes=["LS6 2ZZ"]),
                         [make_record(nhs_number=None)], authority="Example Council")
    assert result.status == "no_match" and result.record is None
    assert result.notice == POSSIBLE_MATCH_NOTICE.format(authority="Example Council")
    assert 0.2 <= result.confidence < 0.99
    assert result.matched_on == ("given_name", "family_name", "postcode")  # the sector
    assert result.ask_for == ("date_of_birth",)


def test_a_possible_match_asks_for_what_was_missing(make_record):
    result = match_child(child(date_of_birth=None, postcodes=[]),
                         [make_record(nhs_number="9434765919")])
    assert result.status == "no_match" and result.notice
    assert result.ask_for == ("nhs_number", "date_of_birth", "postcode")


def test_different_child_is_no_match_without_notice(make_record):
    result = match_child(
        child(given_name="Oliver", family_name="Brown", date_of_birth="2010-07-07",
              postcodes=["BD1 1AA"]),
        [make_record(nhs_number=None)],
    )
    assert (result.status, result.notice, result.confidence) == ("no_match", None, 0.0)


def test_thresholds_decide_the_status(make_record):
    record = make_record(nhs_number=None)
    asked = child(date_of_birth="2014-01-01", postcodes=["LS6 9ZZ"])  # dob off, same district
    p = match_child(asked, [record], match_threshold=0.5, possible_threshold=0.01).confidence
    assert 0.01 < p < 0.999
    assert match_child(asked, [record], match_threshold=p - 0.0005, possible_threshold=0.01
                       ).status == "match"
    above = match_child(asked, [record], match_threshold=min(0.999, p + 0.001),
                        possible_threshold=p - 0.0005)
    assert above.status == "no_match" and above.notice
    below = match_child(asked, [record], match_threshold=0.999, possible_threshold=p + 0.0005)
    assert below.status == "no_match" and below.notice is None


def test_any_of_the_childs_postcodes_counts(make_record):
    result = match_child(child(postcodes=["BD1 1AA", "LS6 2AB"]), [make_record(nhs_number=None)])
    assert result.confidence == 1.0 and "postcode" in result.matched_on


def test_two_equally_good_records_are_not_a_match(make_record):
    records = [make_record(child_ref="A", nhs_number=None),
               make_record(child_ref="B", nhs_number=None)]
    result = match_child(child(), records)
    assert result.status == "no_match" and result.notice


def test_a_runner_up_within_the_margin_is_ambiguous_outside_it_is_not(make_record):
    # Same dob and postcode, family name one letter apart: a close second.
    records = [make_record(child_ref="A", nhs_number=None),
               make_record(child_ref="B", nhs_number=None, family_name="Okafar")]
    index = build_index(records)
    a, b = (compare(prepare_request(child()), prepare_record(r), index) for r in records)
    assert a.bits - b.bits < AMBIGUITY_BITS
    assert match_child(child(), records).status == "no_match"
    far = [records[0], make_record(child_ref="B", nhs_number=None, family_name="Okafar",
                                   date_of_birth=date(2015, 3, 13))]
    assert match_child(child(), far).record is far[0]


def test_best_of_several_records_is_chosen(make_record):
    records = [make_record(child_ref="A", nhs_number=None, given_name="Ada",
                           date_of_birth=date(2011, 1, 1)),
               make_record(child_ref="B", nhs_number=None)]
    assert match_child(child(), records).record is records[1]


def test_no_names_no_demographic_match(make_record):
    result = match_child({"date_of_birth": "2015-03-12", "postcodes": ["LS6 2AB"]},
                         [make_record(nhs_number=None)])
    assert result.status == "no_match"


def test_swapped_given_and_family_names_still_match(make_record):
    result = match_child(child(given_name="Okafor", family_name="Amara"),
                         [make_record(nhs_number=None)])
    assert result.status == "match"
    record = make_record(nhs_number=None)
    c = compare(prepare_request(child(given_name="Okafor", family_name="Amara")),
                prepare_record(record), build_index([record]))
    assert c.swapped and (c.given, c.family) == ("exact", "exact")


# --------------------------------------------------------------------------
# Siblings and twins
# --------------------------------------------------------------------------


def test_a_same_birthday_sibling_is_at_most_possible(make_record):
    for on_file, asked in (("Holly", "Molly"), ("Charlie", "Charlize"), ("Amara", "Ada")):
        records = [make_record(nhs_number=None, given_name=on_file)]
        result = match_child(child(given_name=asked), records)
        assert result.status == "no_match" and result.record is None, asked
        assert result.notice and "given_name" in result.ask_for
        assert is_sibling(prepare_request(child(given_name=asked)),
                          prepare_record(records[0]), build_index(records))


def test_a_typo_is_not_a_sibling(make_record):
    record = make_record(nhs_number=None, given_name="Lily")
    index = build_index([record])
    assert not is_sibling(prepare_request(child(given_name="Lilq")), prepare_record(record), index)
    # two letters off, but nobody's name and spelled like hers: a typo too
    bella = make_record(nhs_number=None, given_name="Isabella")
    for typed in ("Isablel", "Isabela", "Izabella"):
        assert not is_sibling(prepare_request(child(given_name=typed)), prepare_record(bella),
                              build_index([bella])), typed
    assert match_child(child(given_name="Isablel"), [bella]).status == "match"
    # unknown and nothing like it: a sibling with a name we have not met
    assert is_sibling(prepare_request(child(given_name="Zorabeth")), prepare_record(bella),
                      build_index([bella]))
    # a variant is the same child
    kate = make_record(nhs_number=None, given_name="Katherine")
    assert not is_sibling(prepare_request(child(given_name="Kate")), prepare_record(kate),
                          build_index([kate]))
    assert match_child(child(given_name="Kate"), [kate]).status == "match"


def test_a_name_on_file_is_known_so_not_a_typo(make_record):
    # "Amari" is not in the table here only by being on another record.
    records = [make_record(nhs_number=None, given_name="Zorab"),
               make_record(child_ref="C-2", nhs_number=None, given_name="Zorax",
                           date_of_birth=date(2001, 1, 1), family_name="Else")]
    result = match_child(child(given_name="Zorax"), records[:1] + records[1:])
    assert result.status == "no_match"  # Zorax is a name (on file): Zorab's sibling
    alone = match_child(child(given_name="Zorax"), records[:1])
    assert alone.status == "match"  # unknown and one letter off: a typo


def test_a_twin_on_file_does_not_hide_the_right_child(make_record):
    records = [make_record(child_ref="H", nhs_number=None, given_name="Holly"),
               make_record(child_ref="M", nhs_number=None, given_name="Molly")]
    for asked in ("Holly", "Molly"):
        result = match_child(child(given_name=asked), records)
        assert result.status == "match" and result.record.given_name == asked


# --------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------

names = st.text(alphabet=st.characters(categories=("L",)), min_size=1, max_size=20).filter(
    lambda s: normalise_name(s) != ""
)
postcodes = st.from_regex(r"[A-Z]{1,2}[0-9]{1,2} [0-9][A-Z]{2}", fullmatch=True)


@given(given_name=names, family_name=names, dob=st.dates(), postcode=postcodes)
def test_a_record_always_matches_itself(given_name, family_name, dob, postcode):
    record = ChildRecord("R", None, given_name, family_name, dob, postcode)
    asked = {"given_name": given_name, "family_name": family_name,
             "date_of_birth": dob.isoformat(), "postcodes": [postcode]}
    result = match_child(asked, [record])
    assert result.status == "match"
    assert result.confidence >= 0.99


@given(given_name=names, family_name=names, dob=st.dates(), postcode=postcodes,
       other_given=names, other_family=names, other_dob=st.dates())
def test_confidence_is_a_probability(given_name, family_name, dob, postcode,
                                     other_given, other_family, other_dob):
    record = ChildRecord("R", None, given_name, family_name, dob, postcode)
    asked = {"given_name": other_given, "family_name": other_family,
             "date_of_birth": other_dob.isoformat(), "postcodes": [postcode]}
    assert 0.0 <= match_child(asked, [record]).confidence <= 1.0


@given(nhs=st.from_regex(r"[0-9]{10}", fullmatch=True), spaces=st.booleans())
def test_nhs_number_match_is_whatever_the_demographics(nhs, spaces):
    record = ChildRecord("R", nhs, "Someone", "Else", date(2001, 1, 1), "ZZ99 3AA")
    asked_nhs = f"{nhs[:3]} {nhs[3:6]} {nhs[6:]}" if spaces else nhs
    result = match_child({"nhs_number": asked_nhs, "given_name": "Amara",
                          "family_name": "Okafor", "postcodes": []}, [record])
    assert (result.status, result.confidence) == ("match", 1.0)


any_text = st.one_of(st.none(), st.text(max_size=30))


@settings(max_examples=300)
@given(given_name=any_text, family_name=any_text, dob=any_text, nhs=any_text,
       postcodes=st.lists(st.text(max_size=12), max_size=3))
def test_matching_never_raises_on_any_unicode(given_name, family_name, dob, nhs, postcodes):
    records = [ChildRecord("R", "9434765919", "Amara", "Okafor", date(2015, 3, 12), "LS6 2AB"),
               ChildRecord("S", None, given_name or "", family_name or "", None,
                           postcodes[0] if postcodes else None)]
    asked = {"given_name": given_name, "family_name": family_name, "date_of_birth": dob,
             "nhs_number": nhs, "postcodes": postcodes}
    result = match_child(asked, records)
    assert result.status in ("match", "no_match")
    assert match_child(asked, records, narrow=False).status in ("match", "no_match")


@given(postcodes=st.lists(postcodes, min_size=1, max_size=4, unique=True), data=st.data())
def test_the_order_of_the_postcodes_does_not_count(postcodes, data):
    records = [ChildRecord("C-1", None, "Amara", "Okafor", date(2015, 3, 12), "LS6 2AB"),
               ChildRecord("C-2", None, "Bola", "Okafor", date(2015, 3, 12), postcodes[0])]
    shuffled = data.draw(st.permutations(postcodes))
    a = match_child(child(postcodes=postcodes), records)
    b = match_child(child(postcodes=list(shuffled)), records)
    assert (a.status, a.confidence, a.record, a.matched_on, a.ask_for) == (
        b.status, b.confidence, b.record, b.matched_on, b.ask_for)


@given(a_given=names, a_family=names, a_dob=st.dates(), a_pc=postcodes,
       b_given=names, b_family=names, b_dob=st.dates(), b_pc=postcodes)
def test_the_pairwise_comparison_is_symmetric(a_given, a_family, a_dob, a_pc,
                                              b_given, b_family, b_dob, b_pc):
    a = ChildRecord("A", None, a_given, a_family, a_dob, a_pc)
    b = ChildRecord("B", None, b_given, b_family, b_dob, b_pc)
    index = build_index([a, b])
    ab = compare(prepare_record(a), prepare_record(b), index)
    ba = compare(prepare_record(b), prepare_record(a), index)
    assert (ab.dob, ab.postcode, ab.swapped) == (ba.dob, ba.postcode, ba.swapped)
    if ab.swapped:  # given against family: the two levels trade places
        assert sorted(map(str, (ab.given, ab.family))) == sorted(map(str, (ba.given, ba.family)))
    else:
        assert (ab.given, ab.family) == (ba.given, ba.family)
    assert abs(ab.bits - ba.bits) < 1e-9


def test_two_forms_of_one_formal_name_that_begin_differently_may_be_sisters(make_record):
    # Bella and Ella are both on Isabella's line; as names in their own right
    # they are two girls, so with the same birthday and family name: a sibling.
    ella = make_record(nhs_number=None, given_name="Ella")
    index = build_index([ella])
    assert is_sibling(prepare_request(child(given_name="Bella")), prepare_record(ella), index)
    assert match_child(child(given_name="Bella"), [ella]).status == "no_match"
    # a formal name (or a spelling of it) and its form, or forms that begin alike,
    # are one child
    for on_file, asked in (("Catherine", "Kate"), ("Katherine", "Cathy"), ("Kate", "Katie"),
                           ("Elisabeth", "Beth"), ("Isabella", "Bella")):
        record = make_record(nhs_number=None, given_name=on_file)
        assert not is_sibling(prepare_request(child(given_name=asked)), prepare_record(record),
                              build_index([record])), (on_file, asked)
        assert match_child(child(given_name=asked), [record]).status == "match", (on_file, asked)


def test_a_sibling_that_agrees_more_than_the_best_record_makes_it_no_match(make_record):
    # Asked: Joan Lowe. On file: Joan Howe (family name one letter off, another
    # postcode) and Trevor Lowe, same birthday and postcode: Joan is his sister
    # (or his name was replaced), not the Howe child.
    howe = make_record(child_ref="H", nhs_number=None, given_name="Joan", family_name="Howe",
                       postcode="L4G 4AU")
    lowe = make_record(child_ref="L", nhs_number=None, given_name="Trevor", family_name="Lowe")
    asked = child(given_name="Joan", family_name="Lowe")
    assert match_child(asked, [howe]).status == "match"  # alone, the look-alike would do
    result = match_child(asked, [howe, lowe])
    assert result.status == "no_match" and result.record is None and result.notice
