"""Input that parses but cannot be kept: checked before any schema sees it.

No Flask here. ``parse_json_body`` refuses numbers of absurd length
(Python's own limit would raise a bare ``ValueError``, a 500) as invalid JSON;
``text_problems`` names every string field holding a control character (a NUL
cannot be stored in PostgreSQL text, so the audit write would fail) or a lone
surrogate (cannot be encoded as UTF-8 for the kits or the trail). Names in any
script, with apostrophes, hyphens and accents, are untouched.

Every string an input schema or form takes goes through one rule,
``text_problem``: at most ``max_length`` characters, no lone surrogate, and no
control character (C0, C1, DEL), except that multi-line free text (a reason, a
justification, a contact) may hold tabs and line breaks. A single-line value
(a name, a reference, a URL, a filter) may hold no line break at all, Unicode's
own included, so it can never split a header, a log line or a CSV row, and no
bidirectional control or zero-width character (``invisible``), so what a
reader sees is what was typed: an override can show "Smith" for "htimS" or
hide digits, a zero-width space split an NHS number. (A zero-width joiner or
non-joiner between two letters is how Persian and several Indian scripts are
written: kept there.) The
marshmallow field ``Text`` and the WTForms validator ``UsableText`` apply it;
``tests/unit/test_input_fields.py`` fails when an input schema or form has a
string field without one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, pre_load, validate
from wtforms.validators import StopValidation

MAX_NUMBER_DIGITS = 40
ALLOWED_CONTROLS = frozenset("\t\n\r")  # free text (a justification) may have lines
MESSAGE = "Contains a character that cannot be used here (a control character or an " \
          "unpaired surrogate)."
ONE_LINE_MESSAGE = "Must be on one line, without line breaks, tabs or other control characters."
TOO_LONG = "Use at most {max} characters."
#: Unicode's line and paragraph separators: line breaks to a browser or a log reader.
LINE_BREAKS = frozenset("\u2028\u2029")
INVISIBLE_MESSAGE = ("Contains an invisible character (a text-direction control or a "
                     "zero-width character) that cannot be used here.")
#: Bidirectional controls (embeddings, overrides, isolates, marks) and zero-width
#: characters: invisible, and able to make text read otherwise than it is stored.
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                          "\u2066\u2067\u2068\u2069")
ZERO_WIDTH = frozenset("\u200b\u2060\ufeff\u180e\u2061\u2062\u2063\u2064")
JOINERS = frozenset("\u200c\u200d")


def _number(text: str) -> int:
    if len(text) > MAX_NUMBER_DIGITS:
        raise ValueError("number too long")
    return int(text)


def parse_json_body(raw: bytes | str) -> Any:
    """Like ``json.loads``; every refusal is a ``json.JSONDecodeError``."""
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    try:
        return json.loads(text, parse_int=_number)
    except json.JSONDecodeError:
        raise
    except (ValueError, RecursionError) as e:
        raise json.JSONDecodeError(f"unreadable JSON: {type(e).__name__}", text, 0) from e


#: What ``bad_text`` refuses, each as one search (every string of every request is
#: checked, some twice: character by character through ``unicodedata`` it was a third
#: of loading a lookup request). Unicode's control characters (category Cc: C0, DEL,
#: C1) and surrogates (Cs) are these ranges for good (its stability policy fixes
#: both); tests/unit/test_inputs_bad_text.py checks every code point against
#: ``unicodedata``. Multi-line text may hold tab (09), LF (0a) and CR (0d).
_BAD_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_BAD_ONE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029]")


def bad_text(value: str, *, multiline: bool = True) -> bool:
    """A control character (tab, CR and LF allowed when ``multiline``) or a lone
    surrogate; single-line text refuses U+2028 and U+2029 too."""
    return (_BAD_MULTILINE if multiline else _BAD_ONE_LINE).search(value) is not None


def invisible(value: str) -> bool:
    """A bidirectional control or a zero-width character; a joiner or non-joiner
    only when it does not stand between two letters."""
    for i, c in enumerate(value):
        if c in BIDI_CONTROLS or c in ZERO_WIDTH:
            return True
        if c in JOINERS and not (0 < i < len(value) - 1 and value[i - 1].isalpha()
                                 and value[i + 1].isalpha()):
            return True
    return False


def text_problem(value: str, *, max_length: int, multiline: bool = False,
                 free_text: bool = False) -> str | None:
    """Why ``value`` cannot be taken, or None. Length first: an oversized value is
    refused before anything (a regular expression, say) looks at it. ``free_text``
    (a purpose, a reason, a reference: kept verbatim and shown to others) refuses
    an NHS number too (``federator.lookup.free_text``)."""
    if len(value) > max_length:
        return TOO_LONG.format(max=max_length)
    if bad_text(value, multiline=multiline):
        return MESSAGE if multiline or bad_text(value) else ONE_LINE_MESSAGE
    if not multiline and invisible(value):
        return INVISIBLE_MESSAGE
    if free_text:
        from federator.lookup.free_text import NHS_MESSAGE, nhs_numbers

        if nhs_numbers(value):
            return NHS_MESSAGE
    return None


class Text(fields.String):
    """A marshmallow string that ``text_problem`` accepts; every input schema's
    strings are these (``max_length`` is required: nothing unbounded)."""

    def __init__(self, *, max_length: int, multiline: bool = False, free_text: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_length = max_length
        self.multiline = multiline
        self.free_text = free_text
        # never the one to refuse (``_deserialize`` is first), but it puts
        # ``maxLength`` in the OpenAPI document
        self.validators.append(validate.Length(max=max_length))

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        problem = text_problem(text, max_length=self.max_length, multiline=self.multiline,
                               free_text=self.free_text)
        if problem:
            raise ValidationError(problem)
        return text


class UsableText:
    """The WTForms validator for the same rule: the field's own error, shown in the
    page's error summary."""

    def __init__(self, max_length: int, *, multiline: bool = False,
                 free_text: bool = False) -> None:
        self.max_length = max_length
        self.multiline = multiline
        self.free_text = free_text

    def __call__(self, form: Any, field: Any) -> None:
        data = field.data
        if isinstance(data, str):
            problem = text_problem(data, max_length=self.max_length, multiline=self.multiline,
                                   free_text=self.free_text)
            if problem:
                raise StopValidation(problem)


def text_problems(data: Any) -> dict[str, Any]:
    """Marshmallow-shaped errors for every string (key or value) that ``bad_text``
    refuses: ``{"child": {"given_name": [MESSAGE]}}``; empty when all is well."""
    errors: dict[str, Any] = {}
    if isinstance(data, Mapping):
        for key, value in data.items():
            name = str(key)
            if isinstance(key, str) and bad_text(key):
                errors["_schema"] = [MESSAGE]
                continue
            inner = _value_problems(value)
            if inner:
                errors[name] = inner
    return errors


def _value_problems(value: Any) -> Any:
    if isinstance(value, str):
        return [MESSAGE] if bad_text(value) else None
    if isinstance(value, Mapping):
        return text_problems(value) or None
    if isinstance(value, list):
        inner = {i: p for i, item in enumerate(value) if (p := _value_problems(item))}
        return inner or None
    return None


class InputSchema(Schema):
    """The base of every input schema: unknown fields refused, and every string in
    the body (keys, nested schemas' and dicts' values included) checked as
    ``text_problems`` does before any field is loaded. ``Text`` fields add their
    own length and one-line rules."""

    class Meta:
        unknown = RAISE

    @pre_load
    def usable_text(self, data: Any, **_: Any) -> Any:
        problems = text_problems(data)
        if problems:
            raise ValidationError(problems)
        return data


def form_text_errors(form: Any) -> dict[str, list[str]]:
    """``{field name: [message]}`` for each field of a (WTForms) form whose
    ``UsableText`` rule its value breaks; whether or not the form was validated."""
    errors: dict[str, list[str]] = {}
    for field in form:
        for rule in getattr(field, "validators", ()):
            if isinstance(rule, UsableText) and isinstance(field.data, str):
                problem = text_problem(field.data, max_length=rule.max_length,
                                       multiline=rule.multiline, free_text=rule.free_text)
                if problem:
                    errors[field.name] = [problem]
    return errors
