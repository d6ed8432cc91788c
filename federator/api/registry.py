"""``/api/v1/registry``: authorities register and run their endpoints; the
broker's admins approve them. Rules in ``federator.registry.rules``; storage
and audit in ``federator.registry.service``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from flask import current_app, g, request
from flask_smorest import Blueprint, abort
from marshmallow import ValidationError

from federator.audit.trail import AuditUnavailable
from federator.auth.access import require_roles
from federator.inputs import parse_json_body
from federator.registry.conformance import check_and_record
from federator.registry.rules import Refused, authorise, needs_reason
from federator.registry.schemas import ENDPOINT_ID, EndpointSchema, ReviewSchema, safety_errors
from federator.registry.secrets import CredentialsKeyError

blp = require_roles(
    Blueprint("registry", __name__, url_prefix="/api/v1/registry",
              description="Adapter endpoints: registration, approval, health"),
    "broker-admin", "authority-admin",
)
ACTIONS = ("approve", "reject", "suspend", "resume")


def _services() -> Any:
    return current_app.extensions["federator"]


def _refused(e: Refused) -> NoReturn:
    abort(e.status, message=e.message)


def _invalid(errors: Mapping[str, Any]) -> NoReturn:
    abort(422, errors={"json": dict(errors)})


def _guarded(action: str, endpoint_id: str) -> None:
    try:
        authorise(action, g.role, g.principal.authority, endpoint_id)
    except Refused as e:
        _refused(e)
    if not ENDPOINT_ID.match(endpoint_id):  # no such endpoint (nor a query with a NUL)
        abort(404, message="No endpoint with that id.")


def _actor() -> dict[str, Any]:
    return dict(g.principal.actor(g.role))


def _body(schema: Any, *, partial: bool = False) -> dict[str, Any]:
    data = None
    if request.get_data():
        if not request.is_json:
            _invalid({"json": ["The body must be JSON, sent with Content-Type: "
                               "application/json."]})
        try:
            data = parse_json_body(request.get_data())
        except (ValueError, UnicodeDecodeError):  # JSONDecodeError is a ValueError
            _invalid({"json": ["The body is not valid JSON."]})
    try:
        return dict(schema.load(data or {}, partial=partial))
    except ValidationError as e:
        _invalid(e.messages if isinstance(e.messages, dict) else {"json": e.messages})


def _run(change: Any) -> Any:
    try:
        return change()
    except Refused as e:
        _refused(e)
    except AuditUnavailable:
        abort(503, message="The audit trail cannot be written, so nothing was changed.")
    except CredentialsKeyError:
        abort(503, message="This broker cannot store credentials: FEDERATOR_CREDENTIALS_KEY "
                           "is not set.")


#: The document's 200 for answers without a response schema (else the error schema applies).
OK = {"responses": {"200": {"description": "OK", "content": {
    "application/json": {"schema": {"type": "object"}}}}}}


@blp.route("/endpoints", methods=["GET"])
@blp.doc(**OK)
def list_endpoints() -> Any:
    """A broker admin sees every endpoint; an authority admin only its own."""
    registry = _services().registry
    if g.role == "broker-admin":
        return {"endpoints": registry.describe()}
    if not g.principal.authority:
        return {"endpoints": []}
    return {"endpoints": registry.describe(g.principal.authority)}


@blp.route("/endpoints", methods=["POST"])
@blp.alt_response(201, description="Registered, pending approval")
@blp.alt_response(422, description="Invalid or unsafe: every field's messages")
def register_endpoint() -> Any:
    """Register this authority's endpoint; it starts ``pending``."""
    data = _body(EndpointSchema())
    data.setdefault("id", g.principal.authority or "")
    if g.role != "authority-admin":
        abort(403, message="Only an authority admin registers an endpoint, for its own "
                           "authority.")
    if data["id"] != g.principal.authority:
        abort(403, message="You can register an endpoint only for your own authority.")
    errors = safety_errors(data, _services().registry.guard)
    if errors:
        _invalid(errors)
    services = _services()
    return _run(lambda: services.registry.register(data, _actor(), services.trail)), 201


@blp.route("/endpoints/<endpoint_id>", methods=["GET"])
@blp.doc(**OK)
def get_endpoint(endpoint_id: str) -> Any:
    _guarded("view", endpoint_id)
    shown = _services().registry.describe_one(endpoint_id)
    if shown is None:
        abort(404, message=f"No endpoint {endpoint_id}.")
    return shown


@blp.route("/endpoints/<endpoint_id>", methods=["PATCH"])
@blp.doc(**OK)
@blp.alt_response(422, description="Invalid or unsafe: every field's messages")
def change_endpoint(endpoint_id: str) -> Any:
    """Change details. A change that widens who receives children's identities
    (coverage gains an area or becomes national; a new name, code, protocol, URL or
    credentials) sends the endpoint back to pending; removing areas applies at once."""
    _guarded("change", endpoint_id)
    update = _body(EndpointSchema(), partial=True)
    if update.pop("id", endpoint_id) != endpoint_id:
        _invalid({"id": ["The id of an endpoint cannot be changed."]})
    registry = _services().registry
    current = registry.describe_one(endpoint_id)
    if current is None:
        abort(404, message=f"No endpoint {endpoint_id}.")
    merged = {**current, **{k: v for k, v in update.items() if v is not None}}
    protocol_or_url = "url" in update or "protocol" in update
    errors = safety_errors(merged, registry.guard, check_url="url" in update,
                           check_credentials=bool(update.get("credentials")) or (
                               protocol_or_url and not current["credentials_stored"]))
    if errors:
        _invalid(errors)
    services = _services()
    return _run(lambda: registry.change(endpoint_id, update, _actor(), services.trail))


@blp.route("/endpoints/<endpoint_id>/<any(approve, reject, suspend, resume):action>",
           methods=["POST"])
@blp.doc(**OK)
def review_endpoint(endpoint_id: str, action: str) -> Any:
    """Approve or reject (broker admin, with a reason for a rejection); suspend or
    resume (the authority's admin or a broker admin). Approval needs a passing
    conformance check of the endpoint as it is now (409 with the reason); send
    the ``version`` you read to refuse it if the endpoint changed since."""
    _guarded(action, endpoint_id)
    body = _body(ReviewSchema())
    reason = body.get("reason")
    if needs_reason(action) and not (reason or "").strip():
        _invalid({"reason": [f"Say why you {action} this endpoint."]})
    services = _services()
    return _run(lambda: services.registry.transition(endpoint_id, action, reason, _actor(),
                                                     services.trail,
                                                     version=body.get("version")))


@blp.route("/endpoints/<endpoint_id>/check", methods=["POST"])
@blp.doc(**OK)
def check_endpoint(endpoint_id: str) -> Any:
    """Run the conformance checks now and answer check by check (kept for approval)."""
    _guarded("check", endpoint_id)
    services = _services()
    endpoint = services.registry.get(endpoint_id)
    if endpoint is None:
        abort(404, message=f"No endpoint {endpoint_id}.")
    try:
        return check_and_record(services.registry, services.keys, services.trail, endpoint,
                                _actor())
    except AuditUnavailable:
        abort(503, message="The audit trail cannot be written.")


@blp.route("/endpoints/<endpoint_id>/health", methods=["GET"])
@blp.doc(**OK)
def endpoint_health(endpoint_id: str) -> Any:
    """Recent probes and the outcomes of lookups (counts and latency, no content)."""
    _guarded("view", endpoint_id)
    registry = _services().registry
    endpoint = registry.get(endpoint_id)
    if endpoint is None:
        abort(404, message=f"No endpoint {endpoint_id}.")
    hours = request.args.get("hours", "24")
    if not (hours.isascii() and hours.isdigit() and len(hours) < 5) \
            or not 1 <= int(hours) <= 24 * 31:
        _invalid({"hours": ["A whole number of hours from 1 to 744."]})
    return registry.health.report(endpoint_id, endpoint.status, hours=int(hours))
