"""``bare_answer``, the shortcut past the answer schema for an answer of only a
lookup id and a status: whatever it accepts, it gives exactly what the schema
(``WireAnswer``) loads; whatever the schema would refuse or change, it leaves
to the schema."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from adapters.protocol import STATUSES, WireAnswer, bare_answer, parse_answer

SCHEMA = WireAnswer()
values = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                   st.text(max_size=12), st.sampled_from(STATUSES),
                   st.lists(st.text(max_size=3), max_size=2),
                   st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
keys = st.sampled_from(["lookup_id", "status", "confidence", "notice", "professionals",
                        "record_ref", "matched_on", "other"])


def loaded(data: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return SCHEMA.load(data)
    except ValidationError:
        return None


@settings(max_examples=400)
@given(st.dictionaries(keys, values, max_size=4))
def test_what_the_shortcut_gives_is_what_the_schema_loads(data: dict[str, Any]) -> None:
    fast = bare_answer(data)
    if fast is not None:
        assert fast == loaded(data)


@given(st.text(max_size=40), st.sampled_from(STATUSES))
def test_the_usual_answer_takes_the_shortcut(lookup_id: str, status: str) -> None:
    data = {"lookup_id": lookup_id, "status": status}
    assert bare_answer(data) is not None
    assert bare_answer(data) == SCHEMA.load(data)


def test_anything_else_goes_to_the_schema() -> None:
    for data in ({"lookup_id": "L1", "status": "maybe"}, {"lookup_id": 1, "status": "match"},
                 {"lookup_id": "L1"}, {"lookup_id": "L1", "status": "no_match", "notice": "x"},
                 {"lookup_id": "L1", "status": ["no_match"]}):
        assert bare_answer(data) is None
    assert parse_answer(b'{"lookup_id": "L1", "status": "no_match"}', "L1") == {
        "lookup_id": "L1", "status": "no_match", "confidence": None, "professionals": [],
        "notice": None}
