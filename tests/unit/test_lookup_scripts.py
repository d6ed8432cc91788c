"""A name part that mixes scripts is refused, with the field named (UTS #39
highly restrictive: one script a word, or Latin with Han and its companions)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from marshmallow import ValidationError

from federator.lookup.schemas import ChildSchema, LookupRequestSchema
from federator.lookup.scripts import mixed_scripts

CYRILLIC_O = "\u043e"
GREEK_ALPHA = "\u03b1"


@pytest.mark.parametrize("name", [
    "Rosie", "Zoë", "Zoe\u0308", "O'Neil", "O’Neil", "Smith-Jones", "Anne Marie",
    "Siân", "Łucja", "Мария", "Σοφία", "محمد", "山田", "やまだ タロウ", "山田たろう",
    "김민준", "Jean-Иван",  # two words, each in one script
])
def test_names_written_in_one_script_a_word_pass(name: str) -> None:
    assert mixed_scripts(name) is None


@pytest.mark.parametrize(("name", "scripts"), [
    (f"R{CYRILLIC_O}sie", {"LATIN", "CYRILLIC"}),
    (f"{GREEK_ALPHA}nna", {"LATIN", "GREEK"}),
    (f"Anne-M{CYRILLIC_O}rie", {"LATIN", "CYRILLIC"}),
    ("Мaрия", {"LATIN", "CYRILLIC"}),  # a Latin "a" inside a Cyrillic name
    ("김たろう", {"HANGUL", "HIRAGANA"}),
])
def test_a_word_mixing_scripts_is_found(name: str, scripts: set[str]) -> None:
    assert mixed_scripts(name) == scripts


@pytest.mark.parametrize("field", ["given_name", "family_name"])
def test_the_schema_refuses_the_field_that_mixes_scripts(field: str) -> None:
    child = {"given_name": "Rosie", "family_name": "Hill", "date_of_birth": "2015-03-01"}
    child[field] = f"R{CYRILLIC_O}se"
    with pytest.raises(ValidationError) as e:
        ChildSchema().load(child)
    assert set(e.value.messages) == {field}
    [message] = e.value.messages[field]
    assert "Cyrillic and Latin" in message


def test_a_lookup_request_names_the_child_field() -> None:
    body = {"child": {"given_name": f"R{CYRILLIC_O}sie", "family_name": "Hill",
                      "date_of_birth": "2015-03-01", "postcodes": ["LS6 2AB"]},
            "purpose": "Assessment under section 17: finding services already involved",
            "basis": {"type": "safeguarding", "justification": "j" * 60}}
    with pytest.raises(ValidationError) as e:
        LookupRequestSchema().load(body)
    assert list(e.value.messages) == ["child"]
    assert list(e.value.messages["child"]) == ["given_name"]


@given(st.text(max_size=40))
def test_any_text_is_judged_without_raising(text: str) -> None:
    found = mixed_scripts(text)
    assert found is None or len(found) >= 2
