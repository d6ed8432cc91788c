"""Free text cannot carry a child: the pure rules, tried as a hostile user would
(unicode digits, full-width digits, separators, invisible characters), and as a
careless one (the child's name, date of birth or postcode typed in the purpose)."""

from __future__ import annotations

from datetime import date

import nhs_number
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federator.inputs import INVISIBLE_MESSAGE, text_problem
from federator.lookup.free_text import (
    NHS_MESSAGE,
    child_in_text,
    identity_of,
    lookup_text_problems,
    nhs_numbers,
)

VALID = "9434765919"
CHILD = identity_of({"given_name": "Al", "family_name": "Núñez-O'Brien",
                     "date_of_birth": date(2015, 3, 4), "postcodes": ["HX7 5GQ", "LS6 2AB"]})


@pytest.mark.parametrize("text", [
    "NHS 9434765919", "nhs no. 943 476 5919", "943-476-5919", "943.476.5919",
    "943/476/5919", "9 4 3 4 7 6 5 9 1 9", "9-4-3-4-7-6-5-9-1-9", "943 - 476 - 5919",
    "(943) 476 5919", "ref:9434765919.", "943\u00a0476\u00a05919",   # no-break spaces
    "943\u2013476\u20135919",                                        # en dashes
    "\uff19\uff14\uff13\uff14\uff17\uff16\uff15\uff19\uff11\uff19",  # full-width
    "\u0669\u0664\u0663\u0664\u0667\u0666\u0665\u0669\u0661\u0669",  # Arabic-Indic
    "\u096f\u096a\u096b\u096a\u096d\u096c\u096b\u096f\u0967\u096f",  # Devanagari (wrong
    "943\u200b476\u200b5919",                                        # zero-width spaces
    "943\u2060476\ufeff5919", "94\u202e34765919",                    # joiner, BOM, RLO
    "12 9434765919", "9434765919 1",                                 # a digit beside it
])
def test_an_nhs_number_however_written_is_found(text: str) -> None:
    if "\u096f" in text:  # that one spells 9454765919: check digit wrong, not an NHS number
        assert nhs_numbers(text) == []
        return
    assert nhs_numbers(text) == [VALID], text
    assert child_in_text(text) == NHS_MESSAGE


@pytest.mark.parametrize("text", [
    "Assessment under section 17: finding services already involved",
    "9434765918",                     # check digit wrong
    "call 0113 496 0000",             # a phone number's 11 digits
    "07700 900123", "+44 113 496 0000",
    "94347659190",                    # eleven digits in a row
    "case 2026/11/20 ref 12345",      # a date and a reference
    "943 476 591 9 x",                # grouped otherwise, still 10 digits: valid? see below
])
def test_ordinary_numbers_are_not_nhs_numbers(text: str) -> None:
    if text == "943 476 591 9 x":  # whole groups making 10 digits are read as one
        assert nhs_numbers(text) == [VALID]
        return
    assert nhs_numbers(text) == [], text


@pytest.mark.parametrize("text", [
    "born 2015-03-04", "DOB 04/03/2015", "4/3/2015", "04-03-2015", "04.03.2015", "4.3.15",
    "04 03 2015", "2015/03/04", "20150304", "04032015", "4 March 2015", "4th March 2015",
    "4th of March, 2015", "4 Mar 2015", "4 mar. 15", "March 4, 2015", "Mar 4th 2015",
    "03/04/2015",                        # month first, as an American form writes it
    "\uff12\uff10\uff11\uff15-03-04",   # full-width year
])
def test_the_childs_date_of_birth_is_found(text: str) -> None:
    assert child_in_text(text, CHILD) == CHILD_MESSAGE_FOR("date of birth"), text


@pytest.mark.parametrize("text", [
    "Consent given 2026-11-20", "section 47 enquiry opened 04/03/2016", "5 March 2015",
    "about 2015", "4 March",
])
def test_other_dates_are_kept(text: str) -> None:
    assert child_in_text(text, CHILD) is None, text


@pytest.mark.parametrize("text", ["lives at HX7 5GQ", "hx75gq", "HX7  5GQ", "was LS6-2AB",
                                  "HX7\u200b5GQ"])
def test_the_childs_postcode_is_found(text: str) -> None:
    assert child_in_text(text, CHILD) == CHILD_MESSAGE_FOR("postcode"), text


@pytest.mark.parametrize("text", ["near HX7 5GR", "HX7 5GQA", "SHX7 5GQ", "the HX7 district"])
def test_other_postcodes_are_kept(text: str) -> None:
    assert child_in_text(text, CHILD) is None, text


@pytest.mark.parametrize("text", [
    "Concerns about Núñez-O'Brien at school", "concerns raised by nunez", "NUNEZ",
    "O'Brien family", "obrien", "O\u2019Brien", "Al is not attending school",
    "AL missed appointments", "spoke to al nunez", "nunez al", "Nu\u0301n\u0303ez",
])
def test_the_childs_names_are_found(text: str) -> None:
    assert child_in_text(text, CHILD) == CHILD_MESSAGE_FOR("name"), text


@pytest.mark.parametrize("text", [
    "Assessment under section 17: finding services already involved",
    "see Smith et al. for the framework", "al fresco", "as decided in the meeting",
    "Brien", "Nunezville",  # part of another word is not the name
])
def test_ordinary_words_are_not_a_short_name(text: str) -> None:
    assert child_in_text(text, CHILD) is None, text


def test_everyday_words_that_are_names_count_only_when_written_as_names() -> None:
    may = identity_of({"given_name": "May", "family_name": "Brown"})
    assert child_in_text("An assessment may be needed; brown envelope", may) is None
    assert child_in_text("May has missed school", may) is not None
    assert child_in_text("the Brown family", may) is not None
    assert child_in_text("may brown", may) is not None  # the full name, however written
    smith = identity_of({"given_name": "Jo", "family_name": "Smith"})
    assert child_in_text("smith", smith) is not None  # a name, not an everyday word
    assert child_in_text("blacksmith", smith) is None
    single = identity_of({"given_name": "J", "family_name": "Ng"})
    assert child_in_text("a J form", single) is None  # single letters are not looked for
    assert child_in_text("Ng family", single) is not None


def test_names_in_other_scripts_are_found() -> None:
    child = identity_of({"given_name": "Мария", "family_name": "Иванова"})
    assert child_in_text("говорили с Марией", child) is None  # another word form
    assert child_in_text("Мария не ходит в школу", child) is not None


def test_a_lookups_free_text_fields_are_each_named() -> None:
    request = {"child": {"given_name": "Al", "family_name": "Smith",
                         "date_of_birth": "2015-03-04", "postcodes": ["HX7 5GQ"]},
               "purpose": "Smith family, section 17",
               "scope_reason": "She lived at HX7 5GQ before",
               "basis": {"type": "safeguarding", "justification": "NHS 943 476 5919",
                         "reference": "born 4 March 2015"}}
    errors = lookup_text_problems(request)
    assert set(errors) == {"purpose", "scope_reason", "basis"}
    assert set(errors["basis"]) == {"justification", "reference"}
    assert "name" in errors["purpose"][0] and "postcode" in errors["scope_reason"][0]
    assert errors["basis"]["justification"] == [NHS_MESSAGE]
    assert lookup_text_problems({"child": "junk", "purpose": 7, "basis": []}) == {}


def test_single_line_fields_refuse_direction_controls_and_zero_width_characters() -> None:
    for bad in ("Ro\u202esie", "Rosie\u200b", "\u2066Rosie\u2069", "Ro\u200fsie",
                "\ufeffRosie", "943\u200d476"):
        assert text_problem(bad, max_length=100) == INVISIBLE_MESSAGE, repr(bad)
    # a joiner between letters is how some scripts are written (Persian, Malayalam)
    assert text_problem("\u0645\u0647\u0631\u200c\u0622\u0633\u0627", max_length=100) is None
    # multi-line free text is checked for the child instead (its own rule)
    assert text_problem("Rosie\u200b", max_length=100, multiline=True) is None


def CHILD_MESSAGE_FOR(what: str) -> str:
    from federator.lookup.free_text import CHILD_MESSAGE
    return CHILD_MESSAGE.format(what=what)


# -- any valid NHS number, any way of writing its digits ------------------------------

DIGITS = {str(d): [chr(0x30 + d), chr(0xFF10 + d), chr(0x660 + d), chr(0x6F0 + d),
                   chr(0x966 + d), chr(0x1D7CE + d)] for d in range(10)}
SEPARATOR = st.sampled_from(["", " ", "-", ".", "/", "\u00a0", "\u2009", "\u200b",
                             "\u2013", " - ", "\u2060", "_"])


def with_check_digit(first_nine: int) -> str:
    """The NHS number's modulus 11 check digit, worked out here (not by the module
    under test); 10 means no valid number starts with these nine digits."""
    digits = f"{first_nine:09d}"
    check = 11 - sum(int(d) * (10 - i) for i, d in enumerate(digits)) % 11
    return digits + ("0" if check == 11 else str(check) if check < 10 else "X")


VALID_NUMBERS = st.integers(min_value=0, max_value=999_999_999).map(with_check_digit).filter(
    lambda n: n.isdigit() and nhs_number.is_valid(n))


@settings(max_examples=300, deadline=None)
@given(number=VALID_NUMBERS, data=st.data(),
       before=st.sampled_from(["", "NHS ", "see ", "ref: ", "(", "child "]),
       after=st.sampled_from(["", ".", " today", ")", " - urgent"]))
def test_any_valid_nhs_number_is_found_however_its_digits_are_written(
        number: str, data: st.DataObject, before: str, after: str) -> None:
    written = ""
    for i, digit in enumerate(number):
        written += data.draw(st.sampled_from(DIGITS[digit]))
        if i < 9:
            written += data.draw(SEPARATOR)
    text = before + written + after
    assert number in nhs_numbers(text), repr(text)
    assert child_in_text(text) == NHS_MESSAGE


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(categories=["L", "Zs", "P"]), max_size=200))
def test_text_without_digits_holds_no_nhs_number(text: str) -> None:
    assert nhs_numbers(text) == []
