"""The JSON Schemas (docs/schemas/, the specification an authority implements) and
the marshmallow schemas the code reads with (``adapters.protocol``,
``adapters.wire_professional``) are two descriptions of one protocol: this checks
they name the same fields and values, and that every answer broken in one field
which the JSON Schema refuses, the broker refuses too (a top-level field: the
answer is an error) or leaves the professional out (issue 22)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from marshmallow import Schema
from support.protocol_breaks import ANSWER_BREAKS

from adapters.protocol import (
    BASIS_TYPES,
    MATCH_FIELDS,
    STATUSES,
    InvalidAnswer,
    WireAnswer,
    WireChild,
    WireRequest,
    WireRequester,
    parse_answer,
)
from adapters.wire_professional import WireProfessional
from federator.lookup.consent import CONSENT_GIVERS, STATUTORY_POWERS

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"


def load(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))


REQUEST, ANSWER = load("lookup-request"), load("lookup-answer")


def keys(schema: Schema) -> set[str]:
    return {f.data_key or name for name, f in schema.fields.items()}


@pytest.mark.parametrize(("json_schema", "marshmallow"), [
    (REQUEST, WireRequest()), (REQUEST["$defs"]["child"], WireChild()),
    (REQUEST["$defs"]["requester"], WireRequester()), (ANSWER, WireAnswer()),
    (ANSWER["$defs"]["professional"], WireProfessional()),
], ids=["request", "child", "requester", "answer", "professional"])
def test_both_descriptions_name_the_same_fields(json_schema: dict[str, Any],
                                                marshmallow: Schema) -> None:
    assert set(json_schema["properties"]) == keys(marshmallow)


def test_both_descriptions_allow_the_same_values() -> None:
    assert tuple(ANSWER["properties"]["status"]["enum"]) == STATUSES
    assert tuple(ANSWER["$defs"]["matchFields"]["items"]["enum"]) == MATCH_FIELDS
    basis = REQUEST["$defs"]["basis"]
    assert tuple(basis["properties"]["type"]["enum"]) == BASIS_TYPES
    assert tuple(basis["oneOf"][0]["properties"]["given_by"]["enum"]) == CONSENT_GIVERS
    assert tuple(basis["oneOf"][2]["properties"]["power"]["enum"]) == STATUTORY_POWERS
    assert REQUEST["$defs"]["requester"]["properties"]["email"]["maxLength"] == 254


A_MATCH = {
    "lookup_id": "01JD0000000000000000000000", "status": "match", "confidence": 1.0,
    "notice": None, "record_ref": "k2vX3w2-yT0n8mQH8b7bEo0v2VQ8hQ6l6a9pZ8f0c1A",
    "matched_on": ["nhs_number"],
    "professionals": [{"name": "Sam Patel", "role": "Social worker",
                       "service": "children's social care", "organisation": "Leeds City Council",
                       "team": "West Team", "phone": "0113 496 0000",
                       "email": "sam.patel@example.gov.uk", "registration_number": "SW1",
                       "current": True, "from": "2025-09-01", "to": None}],
}
VALIDATOR = Draft202012Validator(ANSWER, format_checker=FormatChecker())


@pytest.mark.parametrize("name", ANSWER_BREAKS)
def test_what_the_answer_schema_refuses_the_broker_refuses_or_leaves_out(name: str) -> None:
    assert not list(VALIDATOR.iter_errors(A_MATCH))
    assert parse_answer(json.dumps(A_MATCH).encode(), A_MATCH["lookup_id"])["professionals"]
    broken = copy.deepcopy(A_MATCH)
    ANSWER_BREAKS[name](broken)
    assert list(VALIDATOR.iter_errors(broken)), f"{name}: the schema accepts it"
    lookup_id = A_MATCH["lookup_id"]
    try:
        read = parse_answer(json.dumps(broken).encode(), lookup_id)
    except InvalidAnswer:
        return  # refused as a whole
    # or read without the broken part: no professional shown, nothing of record_ref
    assert read["professionals"] == [] or read.get("left_out"), (name, read)


def test_the_conformance_checks_test_lookup_is_a_valid_request() -> None:
    from adapters.conformance import conformance_body

    validator = Draft202012Validator(REQUEST, format_checker=FormatChecker())
    assert [e.message for e in validator.iter_errors(conformance_body())] == []


def _examples(heading: str) -> list[Any]:
    text = (SCHEMAS.parent / "protocol.md").read_text(encoding="utf-8")
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", section, re.S)]


@pytest.mark.parametrize(("heading", "schema"), [("The request", REQUEST),
                                                 ("The answer", ANSWER)])
def test_the_specifications_examples_validate(heading: str, schema: dict[str, Any]) -> None:
    examples = _examples(heading)
    assert examples
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    for example in examples:
        assert [e.message for e in validator.iter_errors(example)] == []
