"""``POST /api/v1/lookups``: JSON, or server-sent events with ``Accept: text/event-stream``."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any, NoReturn

import redis
from flask import Response, current_app, g, request
from flask_smorest import Blueprint, abort
from marshmallow import ValidationError
from webargs.flaskparser import FlaskParser

from federator.audit.trail import AuditUnavailable
from federator.auth.access import require_roles
from federator.lookup.schemas import LookupRequestSchema, LookupResultSchema
from federator.state import StateUnavailable

STATE_DOWN = ("The broker's shared state (Redis) cannot be reached, so rate limits and "
              "circuit breakers cannot be enforced; nothing was sent. Try again shortly.")


class RefusalAuditingParser(FlaskParser):
    """Every refused lookup is audited (which fields failed, never their values)."""

    def handle_error(self, error: ValidationError, req: Any, schema: Any, *,
                     error_status_code: int | None, error_headers: Any) -> NoReturn:
        _refuse(error.messages, req.get_json(silent=True))

    def _handle_invalid_json_error(self, error: Any, req: Any, *args: Any,
                                   **kwargs: Any) -> NoReturn:
        _refuse({"json": ["The body is not valid JSON."]}, None, wrap=False)


class LookupBlueprint(Blueprint):
    ARGUMENTS_PARSER = RefusalAuditingParser()


blp = require_roles(
    LookupBlueprint("lookups", __name__, url_prefix="/api/v1",
                    description="Who is working, or has worked, with this child?"),
    "practitioner",
)


@blp.errorhandler(redis.RedisError)
def _state_down(error: redis.RedisError) -> Any:
    """Redis failed inside the rate limiter (it runs before the view): the same 503,
    and the refusal is audited (nothing was sent)."""
    principal = g.get("principal")
    actor = principal.actor(g.get("role") or "practitioner") if principal else {}
    with contextlib.suppress(AuditUnavailable):  # the answer is a 503 either way
        current_app.extensions["federator"].trail.append(
            "lookup.refused", **actor, fields=[], reason="shared state unavailable")
    return {"code": 503, "status": "Service Unavailable", "message": STATE_DOWN}, 503, {
        "Retry-After": "5"}


def _refuse(messages: Any, body: Any, *, wrap: bool = True) -> NoReturn:
    errors = messages.get("json", messages) if isinstance(messages, dict) else messages
    try:
        current_app.extensions["federator"].lookups.refuse(
            g.principal, g.role, errors if isinstance(errors, dict) else {"json": errors},
            body if isinstance(body, dict) else None)
    except AuditUnavailable:
        abort(503, message="The audit trail cannot be written, so nothing was sent.")
    abort(422, errors={"json": errors} if wrap else errors)


@blp.route("/lookups", methods=["POST"])
@blp.arguments(LookupRequestSchema)
@blp.response(200, LookupResultSchema)
@blp.alt_response(422, description="Invalid request: every field's messages")
@blp.alt_response(503, description="The audit trail could not be written, or the shared "
                  "state (Redis) is unreachable: nothing was sent")
def create_lookup(payload: dict[str, Any]) -> Any:
    """Ask the authorities that may know the child who is involved with them.

    With ``Accept: text/event-stream`` the answer comes as server-sent events:
    an ``authority`` event per outcome as it arrives, then one ``result`` event.
    """
    service = current_app.extensions["federator"].lookups
    problems = service.problems(payload)
    if problems:
        _refuse(problems, payload)
    try:
        events = service.run(payload, g.principal, role=g.role)
    except AuditUnavailable:
        abort(503, message="The audit trail cannot be written, so nothing was sent.")
    except StateUnavailable:
        abort(503, message=STATE_DOWN, headers={"Retry-After": "5"})
    if request.accept_mimetypes.best_match(["application/json", "text/event-stream"]) \
            == "text/event-stream":
        return Response(_ServerSentEvents(events), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
    result: dict[str, Any] = {}
    try:
        for kind, data in events:
            if kind == "result":
                result = data
    finally:
        events.close()
    return result, 200, {"Cache-Control": "no-store"}


class _ServerSentEvents(Iterator[str]):
    """The lookup's events as SSE text. The WSGI server calls ``close()`` when the
    response ends or the client goes away, even before the first read; closing
    the service's events finishes the lookup and writes its audit record."""

    def __init__(self, events: Any) -> None:
        self.events = events

    def __next__(self) -> str:
        kind, data = next(self.events)
        return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"

    def close(self) -> None:
        self.events.close()
