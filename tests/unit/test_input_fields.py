"""Every string an input schema or a form takes is checked by ``federator.inputs``.

Walks every marshmallow schema and every Flask-WTF form defined in
``federator`` (as the access-matrix test walks the routes): an input schema's
string fields must be ``Text`` (length, control characters, one line), a
form's text fields must carry ``UsableText``; a schema that is only an answer
must be named as such here. Then each input schema is fed bad text in each of
its string fields and must name that field.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Iterator
from typing import Any

import pytest
from flask_wtf import FlaskForm
from marshmallow import Schema, ValidationError, fields
from wtforms import StringField
from wtforms.fields.core import UnboundField

import federator
from federator.inputs import InputSchema, Text, UsableText
from federator.lookup.schemas import Strict as LookupStrict

#: Schemas that only describe answers (never loaded from a request).
OUTPUT_SCHEMAS = {
    "federator.audit.schemas.PageSchema", "federator.audit.schemas.VerdictSchema",
    "federator.audit.schemas.CheckChildAnswer",
    "federator.api.subject_access.SubjectAuthorityOutcome",
    "federator.api.subject_access.SubjectLookup",
    "federator.api.subject_access.SubjectAccessAnswer",
    "federator.api.audit_redaction.RedactionAnswer",
    "federator.lookup.schemas.AuthorityOutcomeSchema",
    "federator.lookup.schemas.ProfessionalSchema",
    "federator.lookup.schemas.ContactSchema", "federator.lookup.schemas.NoticeSchema",
    "federator.lookup.schemas.LookupResultSchema",
}


def _import_everything() -> None:
    for module in pkgutil.walk_packages(federator.__path__, "federator."):
        if not module.name.startswith("federator.migrations"):
            importlib.import_module(module.name)


def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _ours(cls: type) -> bool:
    return cls.__module__.startswith("federator.")


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


_import_everything()
SCHEMAS = sorted({c for c in _subclasses(Schema) if _ours(c)}, key=_name)
FORMS = sorted({c for c in _subclasses(FlaskForm) if _ours(c)}, key=_name)


def is_input(schema: type[Schema]) -> bool:
    """Derived from ``InputSchema`` (or the lookup schemas' own strict base)."""
    return issubclass(schema, InputSchema | LookupStrict)


INPUTS = [s for s in SCHEMAS if is_input(s) and s.__name__ != "Strict"]


def strings(field: fields.Field, path: str) -> Iterator[tuple[str, fields.Field]]:
    """Every string-taking field, into lists, tuples and dicts (nested schemas are
    walked as schemas of their own)."""
    if isinstance(field, fields.String):
        yield path, field
    elif isinstance(field, fields.List):
        yield from strings(field.inner, f"{path}[]")
    elif isinstance(field, fields.Tuple):
        for i, inner in enumerate(field.tuple_fields):
            yield from strings(inner, f"{path}[{i}]")
    elif isinstance(field, fields.Dict):
        if field.key_field is not None:
            yield from strings(field.key_field, f"{path}{{key}}")
        if field.value_field is not None:
            yield from strings(field.value_field, f"{path}{{value}}")


def unchecked(schema: type[Schema]) -> list[str]:
    return [path for name, field in schema().load_fields.items()
            for path, f in strings(field, name) if not isinstance(f, Text)]


def test_there_is_something_to_walk() -> None:
    names = {_name(s) for s in SCHEMAS}
    assert "federator.registry.schemas.EndpointSchema" in names
    assert "federator.audit.schemas.RecordQuery" in names
    assert "federator.api.subject_access.SubjectAccessBody" in names
    assert {f.__name__ for f in FORMS} >= {"LookupForm", "EndpointForm", "ReviewForm",
                                           "CheckChildForm", "SubjectAccessForm"}


def test_every_schema_is_an_input_or_named_as_an_answer() -> None:
    unknown = [_name(s) for s in SCHEMAS if not is_input(s) and _name(s) not in OUTPUT_SCHEMAS]
    assert not unknown, (f"{unknown}: an input schema derives from federator.inputs."
                         "InputSchema; an answer's schema is listed in OUTPUT_SCHEMAS")


def test_every_schema_the_api_loads_is_an_input_schema() -> None:
    loaded = []
    for module in list(importlib.sys.modules.values()):
        if not getattr(module, "__name__", "").startswith("federator.api"):
            continue
        for value in vars(module).values():
            if not inspect.isfunction(value):
                continue
            for argument in getattr(value, "_apidoc", {}).get("arguments", {}).get(
                    "parameters", []):
                schema = argument["schema"]
                loaded.append(schema if isinstance(schema, type) else type(schema))
    assert loaded, "no @blp.arguments found: the walk is broken"
    assert all(is_input(s) for s in loaded), [s for s in loaded if not is_input(s)]


@pytest.mark.parametrize("schema", INPUTS, ids=_name)
def test_every_string_of_an_input_schema_is_text(schema: type[Schema]) -> None:
    assert not unchecked(schema), (
        f"{_name(schema)} takes {unchecked(schema)} as plain strings: use "
        "federator.inputs.Text (max_length, multiline)")


def _bad_values(field: fields.Field) -> Iterator[tuple[str, Any]]:
    """(what, value) pairs the field must refuse."""
    if isinstance(field, Text):
        yield "nul", "ab\u0000c"
        yield "escape", "\u001b[31mred"
        yield "c1", "ab\u0085c"
        yield "surrogate", "ab\ud800"
        yield "oversized", "é" * (field.max_length + 1)
        if not field.multiline:
            yield "newline", "line\r\nSet-Cookie: x=1"
            yield "separator", "a\u2028b"
    elif isinstance(field, fields.List):
        for what, value in _bad_values(field.inner):
            yield what, [value]
    elif isinstance(field, fields.Dict) and isinstance(field.value_field, Text):
        for what, value in _bad_values(field.value_field):
            yield what, {"k": value}
        yield "bad-key", {"k\u0000": "v"}


CASES = [(s, name, what, value) for s in INPUTS
         for name, field in s().load_fields.items() for what, value in _bad_values(field)]


@pytest.mark.parametrize(("schema", "name", "what", "value"), CASES,
                         ids=[f"{s.__name__}.{n}-{w}" for s, n, w, _ in CASES])
def test_each_input_string_refuses_bad_text_by_name(schema: type[Schema], name: str,
                                                    what: str, value: Any) -> None:
    key = schema().load_fields[name].data_key or name
    with pytest.raises(ValidationError) as refused:
        schema().load({key: value}, partial=True)
    assert key in refused.value.messages, refused.value.messages


def test_multi_line_text_keeps_its_lines_and_names_keep_their_letters() -> None:
    from federator.registry.schemas import EndpointSchema, ReviewSchema

    assert ReviewSchema().load({"reason": "Two lines:\r\n\tsee the ticket."})["reason"]
    loaded = EndpointSchema().load({"name": "Cyngor Gwynedd — Ysgolion’s Tîm",
                                    "contact": "Siân O'Connor-Ñúñez\n佐藤 Анна"},
                                   partial=True)
    assert loaded["name"] == "Cyngor Gwynedd — Ysgolion’s Tîm"
    with pytest.raises(ValidationError):
        EndpointSchema().load({"name": "Two\nlines"}, partial=True)


# -- forms ------------------------------------------------------------------------------

def form_fields(form: type[FlaskForm]) -> Iterator[tuple[str, UnboundField]]:
    for name in dir(form):
        attr = getattr(form, name, None)
        if isinstance(attr, UnboundField) and issubclass(attr.field_class, StringField):
            yield name, attr


def test_every_text_field_of_every_form_has_the_rule() -> None:
    lacking = [f"{_name(form)}.{name}" for form in FORMS
               for name, unbound in form_fields(form)
               if not any(isinstance(v, UsableText)
                          for v in unbound.kwargs.get("validators") or ())]
    assert not lacking, f"{lacking}: add validators=[UsableText(max_length, ...)]"
    assert sum(1 for form in FORMS for _ in form_fields(form)) >= 20
