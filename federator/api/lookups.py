"""``POST /api/v1/lookups``: JSON, or server-sent events with ``Accept: text/event-stream``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, NoReturn

from flask import Response, current_app, g, request, stream_with_context
from flask_smorest import Blueprint, abort
from marshmallow import ValidationError
from webargs.flaskparser import FlaskParser

from federator.audit.trail import AuditUnavailable
from federator.auth.access import require_roles
from federator.lookup.schemas import LookupRequestSchema, LookupResultSchema


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
@blp.alt_response(503, description="The audit trail could not be written: nothing was sent")
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
    if request.accept_mimetypes.best_match(["application/json", "text/event-stream"]) \
            == "text/event-stream":
        return Response(stream_with_context(_sse(events)), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
    result: dict[str, Any] = {}
    for kind, data in events:
        if kind == "result":
            result = data
    return result, 200, {"Cache-Control": "no-store"}


def _sse(events: Iterator[tuple[str, dict[str, Any]]]) -> Iterator[str]:
    for kind, data in events:
        yield f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
