"""Structured JSON logs with a request id, and nothing personal in them.

Log calls pass only identifiers (lookup id, authority id, outcome, counts);
the formatter writes the message, the logger, the level, the request id and
the ``extra`` fields that are on an allow-list, so a stray ``extra`` carrying
a name or an NHS number is dropped rather than written.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import re
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, g, request

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
SAFE_FIELDS = frozenset({
    "lookup_id", "authority", "status", "elapsed_ms", "outcome", "complete", "count",
    "event", "seq", "method", "path", "status_code", "duration_ms", "role", "endpoint",
})
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}\Z")  # \Z: "$" would let a final \n in


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        if request_id:
            entry["request_id"] = request_id
        for name in SAFE_FIELDS:
            if name in record.__dict__:
                entry[name] = record.__dict__[name]
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = record.exc_info[0].__name__  # the type only: messages may hold data
        return json.dumps(entry, default=str)


def configure(level: str = "INFO") -> None:
    """JSON lines on stderr for the whole process."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # its lines carry full URLs


def install_request_ids(app: Flask) -> None:
    """Take a well-formed ``X-Request-Id`` or make one; echo it on the response."""

    @app.before_request
    def _request_id() -> None:
        given = request.headers.get("X-Request-Id", "")
        g.request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        REQUEST_ID.set(g.request_id)

    @app.after_request
    def _echo(response: Response) -> Response:
        request_id = g.get("request_id")
        if request_id:
            response.headers["X-Request-Id"] = request_id
        return response


def outbound_request_id(client: object, method: str = "lookup") -> dict[str, str]:
    """``{"request_id": ...}`` for an adapter client whose ``method`` takes one
    (sent as ``X-Request-Id``), when this request has an id; else nothing.
    Fan-out threads see the id because the fan-out copies the caller's context."""
    request_id = REQUEST_ID.get()
    if not request_id:
        return {}
    return {"request_id": request_id} if _takes_request_id(type(client), method) else {}


@functools.cache
def _takes_request_id(kind: type, method: str) -> bool:
    """Whether ``kind.method`` has a ``request_id`` parameter (asked once per kind:
    ``inspect.signature`` costs more than the rest of a call's set-up)."""
    function = getattr(kind, method, None)
    if function is None:
        return False
    try:
        return "request_id" in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
