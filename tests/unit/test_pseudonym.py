"""Keyed child pseudonyms: HMAC-SHA256 under the audit key."""

from __future__ import annotations

import hashlib
import hmac
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from federator.audit.pseudonym import child_pseudonym, normalise_name

KEY = "k" * 48
OTHER_KEY = "q" * 48
AMARA = {"given_name": "Amara", "family_name": "Okafor", "date_of_birth": "2015-03-02"}


def test_pseudonym_is_hmac_sha256_hex_of_the_nhs_number():
    expected = hmac.new(KEY.encode(), b"nhs:9434765919", hashlib.sha256).hexdigest()
    assert child_pseudonym({"nhs_number": "9434765919"}, KEY) == expected


def test_pseudonym_is_64_lowercase_hex_and_not_the_identity():
    value = child_pseudonym({"nhs_number": "9434765919"}, KEY)
    assert len(value) == 64 and set(value) <= set("0123456789abcdef")
    assert "9434765919" not in value


def test_pseudonym_is_not_a_plain_hash():
    plain = hashlib.sha256(b"nhs:9434765919").hexdigest()
    assert child_pseudonym({"nhs_number": "9434765919"}, KEY) != plain


def test_nhs_number_spaces_do_not_matter():
    assert child_pseudonym({"nhs_number": "943 476 5919"}, KEY) == child_pseudonym(
        {"nhs_number": "9434765919"}, KEY)


def test_nhs_number_wins_over_name_and_date_of_birth():
    with_names = {**AMARA, "nhs_number": "9434765919"}
    other_names = {"nhs_number": "9434765919", "given_name": "Someone", "family_name": "Else"}
    assert child_pseudonym(with_names, KEY) == child_pseudonym(other_names, KEY)
    assert child_pseudonym(with_names, KEY) == child_pseudonym({"nhs_number": "9434765919"}, KEY)


def test_nhs_and_name_dob_pseudonyms_differ():
    assert child_pseudonym({"nhs_number": "9434765919"}, KEY) != child_pseudonym(AMARA, KEY)


def test_nhs_material_cannot_collide_with_name_material():
    # A name pseudonym is never computed from "nhs:" material, whatever the name says.
    crafted = {"given_name": "nhs", "family_name": "9434765919", "date_of_birth": ""}
    assert child_pseudonym(crafted, KEY) != child_pseudonym({"nhs_number": "9434765919"}, KEY)


@pytest.mark.parametrize("blank", [None, "", "   "])
def test_blank_nhs_number_falls_back_to_name_and_date_of_birth(blank):
    assert child_pseudonym({**AMARA, "nhs_number": blank}, KEY) == child_pseudonym(AMARA, KEY)


@pytest.mark.parametrize("variant", [
    {"given_name": "AMARA", "family_name": "OKAFOR"},
    {"given_name": "amara", "family_name": "okafor"},
    {"given_name": "  Amara ", "family_name": " Okafor  "},
    {"given_name": "Amára", "family_name": "Okàfor"},
    {"given_name": "A mara", "family_name": "Oka-for"},
])
def test_case_spaces_and_accents_give_the_same_value(variant):
    assert child_pseudonym({**AMARA, **variant}, KEY) == child_pseudonym(AMARA, KEY)


def test_accented_and_plain_names_match():
    a = {"given_name": "Zoë", "family_name": "Ó Briain", "date_of_birth": "2016-01-01"}
    b = {"given_name": "ZOE", "family_name": "obriain", "date_of_birth": "2016-01-01"}
    assert child_pseudonym(a, KEY) == child_pseudonym(b, KEY)


def test_composed_and_decomposed_accents_match():
    composed = {**AMARA, "given_name": "Am\u00e1ra"}
    decomposed = {**AMARA, "given_name": "Ama\u0301ra"}
    assert child_pseudonym(composed, KEY) == child_pseudonym(decomposed, KEY)


def test_date_of_birth_as_date_or_text_gives_the_same_value():
    assert child_pseudonym({**AMARA, "date_of_birth": date(2015, 3, 2)}, KEY) == child_pseudonym(
        AMARA, KEY)


@pytest.mark.parametrize("change", [
    {"given_name": "Amaro"}, {"family_name": "Okafo"}, {"date_of_birth": "2015-03-03"},
    {"given_name": "Okafor", "family_name": "Amara"},
])
def test_a_different_child_gets_a_different_value(change):
    assert child_pseudonym({**AMARA, **change}, KEY) != child_pseudonym(AMARA, KEY)


def test_name_boundary_is_kept():
    a = {"given_name": "Ann", "family_name": "Amara", "date_of_birth": "2015-03-02"}
    b = {"given_name": "Anna", "family_name": "Mara", "date_of_birth": "2015-03-02"}
    assert child_pseudonym(a, KEY) != child_pseudonym(b, KEY)


def test_a_different_nhs_number_gets_a_different_value():
    assert child_pseudonym({"nhs_number": "9434765919"}, KEY) != child_pseudonym(
        {"nhs_number": "9434765870"}, KEY)


@pytest.mark.parametrize("child", [{"nhs_number": "9434765919"}, AMARA])
def test_a_different_key_gives_a_different_value(child):
    assert child_pseudonym(child, KEY) != child_pseudonym(child, OTHER_KEY)


def test_same_input_same_key_is_stable():
    assert child_pseudonym(AMARA, KEY) == child_pseudonym(dict(AMARA), KEY)


@given(st.text(min_size=1, max_size=30), st.text(min_size=1, max_size=30))
def test_different_keys_never_agree(key_a, key_b):
    if key_a.encode() == key_b.encode():
        return
    assert child_pseudonym(AMARA, key_a) != child_pseudonym(AMARA, key_b)


LETTERS = "abcdefghijklmnopqrstuvwxyzàáâäãåçèéêëìíîïñòóôöõøùúûüýÿœæ"


@given(st.text(alphabet=LETTERS + LETTERS.upper() + " -'", min_size=1, max_size=20))
def test_case_never_matters(name):
    child = {**AMARA, "given_name": name}
    assert child_pseudonym({**child, "given_name": name.upper()}, KEY) == child_pseudonym(
        {**child, "given_name": name.lower()}, KEY)


@pytest.mark.parametrize(("name", "normal"), [
    ("Zoë", "zoe"), ("O'Brien", "obrien"), ("Mary Ann", "maryann"), ("Strauß", "strauss"),
    ("Łukasz", "łukasz"), ("  Amara\t", "amara"), ("ÉLODIE", "elodie"),
])
def test_normalise_name(name, normal):
    assert normalise_name(name) == normal
