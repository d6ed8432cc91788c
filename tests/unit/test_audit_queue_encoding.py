"""An entry's fields as the queue holds them (federator.audit.queue_writer): a NUL
anywhere is found in the encoded text, and nothing else is taken for one."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from federator.audit.queue_writer import encode, holds_nul


class Odd:
    def __str__(self) -> str:
        return "made\x00up"


@pytest.mark.parametrize("fields", [
    {"purpose": "a\x00b"},
    {"a\x00": "key"},
    {"outcomes": [{"id": "leeds", "detail": ["x", "\x00"]}]},
    {"odd": Odd()},  # what JSON cannot hold goes as its text, NUL and all
    {"purpose": "\\\x00"},  # a backslash, then a NUL
])
def test_a_nul_anywhere_is_found(fields: dict) -> None:
    assert holds_nul(encode(fields))


@pytest.mark.parametrize("fields", [
    {"purpose": "\\u0000"},  # the text of an escape, not a NUL
    {"purpose": "\\\\u0000"},
    {"purpose": "café \u2028 \x01", "at": datetime(2026, 12, 3, tzinfo=UTC)},
    {},
])
def test_nothing_else_is_taken_for_a_nul(fields: dict) -> None:
    assert not holds_nul(encode(fields))
