"""Each comparison level of each field (adapters.kit.comparisons), the name
normalisation under them (adapters.kit.normalise) and the variant table."""

from __future__ import annotations

import pytest

from adapters.kit.comparisons import (
    DOB_LEVELS,
    FAMILY_LEVELS,
    GIVEN_LEVELS,
    POSTCODE_LEVELS,
    compare_dob,
    compare_family,
    compare_given,
    compare_postcodes,
    prepare_name,
    prepare_postcode,
)
from adapters.kit.model import LEVELS
from adapters.kit.names import are_variants, in_table
from adapters.kit.normalise import (
    dob_digits,
    name_parts,
    normalise_name,
    postcode_district,
    postcode_sector,
    valid_nhs_number,
)


def given(a: str | None, b: str | None) -> str | None:
    return compare_given(prepare_name(a), prepare_name(b))


def family(a: str | None, b: str | None) -> str | None:
    return compare_family(prepare_name(a), prepare_name(b))


def test_the_model_has_a_weight_for_every_level() -> None:
    assert LEVELS == {"given_name": GIVEN_LEVELS, "family_name": FAMILY_LEVELS,
                      "date_of_birth": DOB_LEVELS, "postcode": POSTCODE_LEVELS}


@pytest.mark.parametrize(("a", "b", "level"), [
    ("Amara", "AMARA", "exact"),
    ("Zoë", "Zoe", "exact"),
    ("R\u043esie", "Rosie", "exact"),               # Cyrillic о
    ("\u0410m\u0430r\u0430", "Amara", "exact"),  # Cyrillic А and а among Latin letters
    ("Katherine", "Kate", "variant"),
    ("Catherine", "Katherine", "variant"),
    ("Mohammed", "Muhammad", "variant"),
    ("Mary Jane", "Mary", "part"),
    ("Lily", "Lilq", "close"),                      # one letter wrong in a short name
    ("John", "Jorn", "close"),
    ("Christopher", "Christohper", "close"),
    ("Stephen", "Stefan", "variant"),
    ("Shawna", "Siobhan", "other"),
    ("Thomas", "Tomas", "variant"),
    ("Jeffery", "Geoffrey", "phonetic"),
    ("Jennifer", "Jenifa", "fuzzy"),
    ("J", "John", "initial"),
    ("J.", "Jack", "initial"),
    ("K", "John", "other"),
    ("Oliver", "Zainab", "other"),
    ("", "John", None),
    (None, "John", None),
    ("John", "   ", None),
])
def test_given_name_levels(a, b, level) -> None:
    assert given(a, b) == level
    assert given(b, a) == level  # either way round


@pytest.mark.parametrize(("a", "b", "level"), [
    ("Okafor", "okafor", "exact"),
    ("O'Neil", "ONeil", "exact"),
    ("Smith-Jones", "Smith", "part"),
    ("Jones", "Smith Jones", "part"),
    ("Okafor", "Okafur", "close"),
    ("Smith", "Smyth", "close"),
    ("Catherine", "Kathryn", "phonetic"),           # no variants for a family name
    ("Thompson", "Thomas", "fuzzy"),
    ("O", "Okafor", "initial"),
    ("Okafor", "Brown", "other"),
    (None, "Brown", None),
])
def test_family_name_levels(a, b, level) -> None:
    assert family(a, b) == level
    assert family(b, a) == level


@pytest.mark.parametrize(("a", "b", "level"), [
    ("2015-03-12", "2015-03-12", "exact"),
    ("2015-03-12", "2015-12-03", "transposed"),
    ("2015-03-12", "2016-03-12", "year_off"),
    ("2015-03-12", "2014-03-12", "year_off"),
    ("2015-03-12", "2015-03-13", "one_digit"),
    ("2015-03-12", "2015-08-12", "one_digit"),
    ("2015-03-12", "2015-13-12", "one_digit"),      # as typed, no real date
    ("1990-07-20", "1990-02-70", "digits_swapped"),  # neighbours swapped over
    ("1950-03-13", "1950-01-33", "digits_swapped"),
    ("1984-02-05", "1984-00-25", "digits_swapped"),
    ("2015-03-12", "2015-02-13", "other"),           # two digits, not neighbours
    ("2015-03-12", "2015-04-22", "other"),           # two neighbours, not swapped
    ("2015-03-12", "2011-07-30", "other"),
    ("2015-03-12", None, None),
    ("2015-03-12", "12/03/2015", None),              # not ISO: missing, not wrong
])
def test_date_of_birth_levels(a, b, level) -> None:
    assert compare_dob(dob_digits(a), dob_digits(b)) == level
    assert compare_dob(dob_digits(b), dob_digits(a)) == level


@pytest.mark.parametrize(("asked", "known", "level"), [
    (["LS6 2AB"], "ls62ab", "full"),
    (["LS6 2ZZ"], "LS6 2AB", "sector"),
    (["LS6 9ZZ"], "LS6 2AB", "district"),
    (["LS6 2AC"], "LS6 2AB", "sector"),
    (["2000"], "2001", "near"),                    # not UK-shaped: one character off
    (["BD1 1AA"], "LS6 2AB", "other"),
    (["BD1 1AA", "LS6 2AB"], "LS6 2AB", "full"),     # the best of the request's postcodes
    (["LS6 2AB", "BD1 1AA"], "LS6 2AB", "full"),
    ([], "LS6 2AB", None),
    (["LS6 2AB"], None, None),
])
def test_postcode_levels(asked, known, level) -> None:
    prepared = [p for p in map(prepare_postcode, asked) if p is not None]
    assert compare_postcodes(prepared, prepare_postcode(known)) == level


def test_postcode_parts() -> None:
    assert (postcode_district("LS62AB"), postcode_sector("LS62AB")) == ("LS6", "LS62")
    assert (postcode_district("EC1A1BB"), postcode_sector("EC1A1BB")) == ("EC1A", "EC1A1")
    assert postcode_district("2000") is None


def test_names_are_normalised_the_same_way_whatever_the_script_or_case() -> None:
    assert name_parts("Zoë O'Neil-Smith") == ("zoe", "oneil", "smith")
    assert normalise_name("Ｊｏｈｎ") == "john"                        # full width
    assert normalise_name("\u0410\u043d\u043d\u0430") == normalise_name("\u0430\u043d\u043d\u0430")
    assert normalise_name("Łukasz") == "lukasz" and normalise_name("ﬁona") == "fiona"
    assert normalise_name("\u0391\u039c\u0391RA") == "amara"        # Greek capitals
    assert normalise_name("") == "" and normalise_name(None) == ""


def test_the_variant_table() -> None:
    assert are_variants("katherine", "kate") and are_variants("mohammed", "muhammad")
    assert not are_variants("holly", "molly") and not are_variants("charles", "charlotte")
    assert not are_variants("kate", "kate")
    assert in_table("molly") and in_table("charlize") and not in_table("lilq")


@pytest.mark.parametrize(("number", "valid"), [
    ("9434765919", True), ("943 476 5919", True), ("9990001006", True),
    ("9434765918", False), ("943476591", False), ("94347659190", False),
    ("abcdefghij", False), ("", False), (None, False), ("١٢٣٤٥٦٧٨٩٠", False),
])
def test_nhs_number_check_digit(number, valid) -> None:
    assert valid_nhs_number(number) is valid
