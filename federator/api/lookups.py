"""``POST /api/v1/lookups``: JSON, or server-sent events with ``Accept: text/event-stream``."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any, NoReturn

import redis
from flask import Response, current_app, g, request
from flask_smorest import Blueprint, abort
from marshmallow import ValidationError, missing
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import RequestEntityTooLarge

from federator.audit.trail import AuditUnavailable
from federator.auth.access import require_roles
from federator.inputs import parse_json_body
from federator.lookup.followups import NotYours, RetryRefused, lookup_receipt
from federator.lookup.journey import STATE_DOWN_REASON
from federator.lookup.schemas import LookupRequestSchema, LookupResultSchema
from federator.lookup.service import COMPLETION_UNRECORDED
from federator.state import StateUnavailable

STATE_DOWN = ("The broker's shared state (Redis) cannot be reached, so rate limits and "
              "circuit breakers cannot be enforced; nothing was sent. Try again shortly.")


TOO_MANY = ("Beyond the practitioner's lookup budget (every route counted together), their "
            "refused-lookup budget, or the organisation's ceiling: nothing was sent. The body "
            "names the `scope` (practitioner, refused, organisation), the `limit` and "
            "`retry_after` seconds; `Retry-After` says the same")


class RefusalAuditingParser(FlaskParser):
    """Every refused lookup is audited (which fields failed, never their values)."""

    def handle_error(self, error: ValidationError, req: Any, schema: Any, *,
                     error_status_code: int | None, error_headers: Any) -> NoReturn:
        _refuse(error.messages, req.get_json(silent=True))

    def _raw_load_json(self, req: Any) -> Any:
        """As webargs does, but absurd numbers are invalid JSON, not a 500."""
        if not is_json_request(req):
            if req.content_length or req.headers.get("Transfer-Encoding"):
                _refuse({"json": ["The body must be JSON, sent with Content-Type: "
                                  "application/json."]}, None, wrap=False)
            return missing
        data = req.get_data(cache=True)
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        if req.content_length is None and limit and len(data) >= limit:
            raise RequestEntityTooLarge()  # chunked: the stream stopped at the limit
        return parse_json_body(data)

    def _handle_invalid_json_error(self, error: Any, req: Any, *args: Any,
                                   **kwargs: Any) -> NoReturn:
        _refuse({"json": ["The body is not valid JSON."]}, None, wrap=False)


class LookupBlueprint(Blueprint):
    ARGUMENTS_PARSER = RefusalAuditingParser()


#: One instance for every request: given the class, webargs builds the schema (and
#: its nested schemas, deep-copying every field) on each request; ``load`` keeps no
#: state on the instance.
REQUEST = LookupRequestSchema()
blp = require_roles(
    LookupBlueprint("lookups", __name__, url_prefix="/api/v1",
                    description="Who is working, or has worked, with this child?"),
    "practitioner",
)


@blp.errorhandler(redis.RedisError)
def _state_down(error: redis.RedisError) -> Any:
    """Redis failed where no guard of the service turned it into ``StateUnavailable``:
    the same 503, and the refusal is audited (nothing was sent)."""
    with contextlib.suppress(AuditUnavailable):  # the answer is a 503 either way
        current_app.extensions["federator"].lookups.refuse(
            g.get("principal"), g.get("role"), reason=STATE_DOWN_REASON)
    return {"code": 503, "status": "Service Unavailable", "message": STATE_DOWN}, 503, {
        "Retry-After": "5"}


def _refuse(messages: Any, body: Any, *, wrap: bool = True) -> NoReturn:
    errors = messages.get("json", messages) if isinstance(messages, dict) else messages
    try:
        current_app.extensions["federator"].lookups.refuse(
            g.principal, g.role, errors if isinstance(errors, dict) else {"json": errors},
            body)
    except AuditUnavailable:
        abort(503, message="The audit trail cannot be written, so nothing was sent.")
    abort(422, errors={"json": errors} if wrap else errors)


@blp.route("/lookups", methods=["POST"])
@blp.arguments(REQUEST)
@blp.response(200, LookupResultSchema)
@blp.alt_response(422, description="Invalid request: every field's messages")
@blp.alt_response(429, description=TOO_MANY)
@blp.alt_response(503, description="The audit trail could not be written, or the shared "
                  "state (Redis) is unreachable: nothing was sent. Or the question was "
                  "audited and sent but its answer could not be recorded: it is not shown")
def create_lookup(payload: dict[str, Any]) -> Any:
    """Ask the authorities that may know the child who is involved with them.

    With ``Accept: text/event-stream`` the answer comes as server-sent events:
    an ``authority`` event per outcome as it arrives, then one ``result`` event.
    """
    service = current_app.extensions["federator"].lookups
    problems = service.problems(payload)
    if problems:
        _refuse(problems, payload)
    return _respond(payload)


def _respond(payload: dict[str, Any], retry_of: str | None = None) -> Any:
    """Run the lookup (or the retry of ``retry_of``); JSON, or server-sent events
    when the client asks for them."""
    service = current_app.extensions["federator"].lookups
    try:
        events = (service.run(payload, g.principal, role=g.role) if retry_of is None
                  else service.retry(payload, g.principal, retry_of, role=g.role))
    except NotYours:
        abort(404, message=NOT_YOURS)
    except RetryRefused as e:
        abort(409, message=str(e))
    except AuditUnavailable:
        abort(503, message="The audit trail cannot be written, so nothing was sent.")
    except StateUnavailable:
        abort(503, message=STATE_DOWN, headers={"Retry-After": "5"})
    if request.accept_mimetypes.best_match(["application/json", "text/event-stream"]) \
            == "text/event-stream":
        return Response(_ServerSentEvents(events), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
    try:
        return events.result(), 200, {"Cache-Control": "no-store"}
    except AuditUnavailable:
        abort(503, message=COMPLETION_UNRECORDED)


NOT_YOURS = "No lookup of yours has this id."


@blp.route("/lookups/<lookup_id>/retry", methods=["POST"])
@blp.arguments(REQUEST)
@blp.response(200, LookupResultSchema)
@blp.alt_response(404, description="No lookup of yours has this id")
@blp.alt_response(409, description="Another child, too late, not finished, or nobody to ask")
@blp.alt_response(422, description="Invalid request: every field's messages")
@blp.alt_response(429, description=TOO_MANY)
def retry_lookup(payload: dict[str, Any], lookup_id: str) -> Any:
    """Ask again only the authorities that did not answer one of your lookups
    (``timeout``, ``error`` or ``unavailable``), with the same child, within
    ``FEDERATOR_RETRY_WINDOW_S``. Audited as a lookup with ``follows``; the
    first answer is not kept, so the answer holds only the authorities asked again.
    ``authorities`` in the body narrows it further."""
    problems = current_app.extensions["federator"].lookups.problems(payload)
    if problems:
        _refuse(problems, payload)
    return _respond(payload, retry_of=lookup_id)


@blp.route("/lookups/<lookup_id>/receipt", methods=["GET"])
@blp.alt_response(404, description="No lookup of yours has this id")
def lookup_receipt_json(lookup_id: str) -> Any:
    """A receipt for the case file, from the audit trail: when, purpose, basis type,
    each authority asked and its outcome, and the signed checkpoint covering the
    records (or how many more records until one does). No professionals, no child."""
    services = current_app.extensions["federator"]
    try:
        body = lookup_receipt(services.trail, lookup_id, g.principal.id,
                              names=services.lookups.endpoint_names(),
                              checkpoint_every=services.settings.audit_checkpoint_every,
                              interrupted_after_s=services.lookups.interrupted_after_s)
    except NotYours:
        abort(404, message=NOT_YOURS)
    return body, 200, {"Cache-Control": "no-store"}


class _ServerSentEvents(Iterator[str]):
    """The lookup's events as SSE text. The WSGI server calls ``close()`` when the
    response ends or the client goes away, even before the first read; closing
    the service's events finishes the lookup and writes its audit record."""

    def __init__(self, events: Any) -> None:
        self.events = events
        self.failed = False

    def __next__(self) -> str:
        if self.failed:
            raise StopIteration
        try:
            kind, data = next(self.events)
        except AuditUnavailable:  # sent, but its answer could not be recorded: not shown
            self.failed = True
            kind, data = "failure", {"code": 503, "message": COMPLETION_UNRECORDED}
        return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"

    def close(self) -> None:
        self.events.close()
