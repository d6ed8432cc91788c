"""federator.inputs: what parses but cannot be kept, named by field."""

from __future__ import annotations

import json

import pytest

from federator.inputs import MESSAGE, bad_text, parse_json_body, text_problems


@pytest.mark.parametrize("name", ["Siân", "O'Connor-Ñúñez", "D’Arcy", "Анна", "佐藤",
                                  "العلي", "Wiśniewska-Żak", "Zoe\u0308", "Line\none"])
def test_names_in_any_script_are_usable(name: str) -> None:
    assert not bad_text(name)


@pytest.mark.parametrize("value", ["a\u0000b", "bell\u0007", "\ud800", "x\udfff", "\x1b[31m"])
def test_control_characters_and_lone_surrogates_are_not(value: str) -> None:
    assert bad_text(value)


def test_problems_are_named_by_their_path() -> None:
    data = {"child": {"given_name": "An\u0000na", "postcodes": ["LS6 2AB", "\ud800"]},
            "purpose": "fine", "basis": {"reference": "ok"}, "n": 3}
    assert text_problems(data) == {"child": {"given_name": [MESSAGE],
                                             "postcodes": {1: [MESSAGE]}}}
    assert text_problems({"purpose": "fine", "child": {"given_name": "Zoë"}}) == {}
    assert text_problems({"bad\u0000key": "x"}) == {"_schema": [MESSAGE]}


def test_absurd_numbers_are_invalid_json_not_a_value_error() -> None:
    assert parse_json_body(b'{"deadline_ms": 5000}') == {"deadline_ms": 5000}
    with pytest.raises(json.JSONDecodeError):
        parse_json_body('{"deadline_ms": ' + "9" * 5000 + "}")
    with pytest.raises(json.JSONDecodeError):
        parse_json_body("{nope")
    with pytest.raises(UnicodeDecodeError):  # webargs answers this one as invalid JSON
        parse_json_body(b'"\xff"')
