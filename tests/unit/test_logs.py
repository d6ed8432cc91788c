from __future__ import annotations

import json
import logging

from federator.logs import REQUEST_ID, JsonFormatter


def record(**extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("federator.x", logging.INFO, __file__, 1, "lookup completed", (), None)
    rec.__dict__.update(extra)
    return rec


def test_only_allowed_fields_are_written() -> None:
    line = json.loads(JsonFormatter().format(record(
        lookup_id="01ABC", given_name="Amara", nhs_number="9434765919", complete=False)))
    assert line["lookup_id"] == "01ABC" and line["complete"] is False
    assert "given_name" not in line and "nhs_number" not in line
    assert "Amara" not in json.dumps(line) and "9434765919" not in json.dumps(line)


def test_request_id_from_context_is_written() -> None:
    token = REQUEST_ID.set("req-12345678")
    try:
        line = json.loads(JsonFormatter().format(record()))
    finally:
        REQUEST_ID.reset(token)
    assert line["request_id"] == "req-12345678"


def test_exception_messages_are_not_written_only_their_type() -> None:
    try:
        raise ValueError("Amara Okafor 9434765919")
    except ValueError:
        import sys

        rec = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = JsonFormatter().format(rec)
    assert "Amara" not in line and json.loads(line)["error"] == "ValueError"
