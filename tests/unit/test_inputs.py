"""federator.inputs: what parses but cannot be kept, named by field."""

from __future__ import annotations

import json

import pytest
from marshmallow import ValidationError, fields
from werkzeug.datastructures import MultiDict
from wtforms import Form, StringField, TextAreaField

from federator.inputs import (
    MESSAGE,
    ONE_LINE_MESSAGE,
    InputSchema,
    Text,
    UsableText,
    bad_text,
    form_text_errors,
    parse_json_body,
    text_problem,
    text_problems,
)


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


# -- the one rule every input schema and form uses ---------------------------------------

@pytest.mark.parametrize("value", ["Siân O'Connor-Ñúñez", "D’Arcy", "佐藤 Анна", "العلي",
                                   "Zoe\u0308", "E08000035"])
def test_single_line_text_takes_names_in_any_script(value: str) -> None:
    assert text_problem(value, max_length=100) is None


@pytest.mark.parametrize(("value", "message"), [
    ("a\u0000b", MESSAGE), ("\u001b[31m", MESSAGE), ("a\u0085b", MESSAGE),  # C0, C1 (NEL)
    ("a\u007fb", MESSAGE), ("\ud800", MESSAGE),                              # DEL, surrogate
    ("a\nb", ONE_LINE_MESSAGE), ("a\r\nSet-Cookie: x", ONE_LINE_MESSAGE),
    ("a\tb", ONE_LINE_MESSAGE), ("a\u2028b", ONE_LINE_MESSAGE), ("a\u2029b", ONE_LINE_MESSAGE),
])
def test_single_line_text_refuses_controls_and_line_breaks(value: str, message: str) -> None:
    assert text_problem(value, max_length=100) == message


def test_multi_line_text_keeps_tabs_and_line_breaks_only() -> None:
    assert text_problem("One\r\nTwo\n\tthree", max_length=100, multiline=True) is None
    assert text_problem("a\u2028b", max_length=100, multiline=True) is None
    assert text_problem("a\u0000b\n", max_length=100, multiline=True) == MESSAGE
    assert text_problem("a\u000bb", max_length=100, multiline=True) == MESSAGE  # vertical tab


def test_length_is_counted_in_characters_and_checked_first() -> None:
    assert text_problem("ñ" * 10, max_length=10) is None
    assert text_problem("ñ" * 11, max_length=10) == "Use at most 10 characters."
    assert text_problem("\u0000" * 11, max_length=10) == "Use at most 10 characters."


class _Body(InputSchema):
    name = Text(max_length=5)
    note = Text(max_length=50, multiline=True)
    tags = fields.Dict(keys=Text(max_length=5), values=fields.Raw())


def test_text_field_and_input_schema_name_the_field() -> None:
    assert _Body().load({"name": "Siân", "note": "a\nb"}) == {"name": "Siân", "note": "a\nb"}
    for body, where in (({"name": "a\nb"}, "name"), ({"name": "toolong"}, "name"),
                        ({"note": "a\u0000"}, "note"), ({"tags": {"x": "\u0007"}}, "tags"),
                        ({"tags": {"\u0000": 1}}, "tags")):
        with pytest.raises(ValidationError) as refused:
            _Body().load(body)
        assert where in refused.value.messages, (body, refused.value.messages)
    with pytest.raises(ValidationError) as refused:
        _Body().load({"name": "ok", "extra": 1})  # unknown fields are refused too
    assert "extra" in refused.value.messages


class _Form(Form):
    name = StringField(validators=[UsableText(5)])
    note = TextAreaField(validators=[UsableText(50, multiline=True)])
    free = StringField()


def test_usable_text_is_a_form_fields_own_error() -> None:
    form = _Form(MultiDict({"name": "a\rb", "note": "one\ntwo", "free": "\u0000"}))
    assert form_text_errors(form) == {"name": [ONE_LINE_MESSAGE]}  # before validation too
    assert not form.validate()
    assert form.errors == {"name": [ONE_LINE_MESSAGE]}
    form = _Form(MultiDict({"name": "Siân", "note": "x" * 51}))
    assert form_text_errors(form) == {"note": ["Use at most 50 characters."]}
    assert form_text_errors(_Form(MultiDict({"name": "Zoë"}))) == {}
