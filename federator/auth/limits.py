"""Per-practitioner rate limits on lookups (Flask-Limiter).

Limits are counted per signed-in person (the principal's id), per minute and
per day, in Redis when ``FEDERATOR_REDIS_URL`` is set (shared by every broker
process, moving window done atomically in Redis) and in-process otherwise.
A refused lookup answers 429 with ``Retry-After`` (JSON for the API, a page
otherwise) and is written to the audit trail as ``lookup.rate_limited``.

Which views count as lookups: the endpoints in ``LOOKUP_ENDPOINTS`` and any
view marked with :func:`lookup_limited`; only their POSTs that ran a lookup
(not those refused for bad input) are counted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, Response, current_app, g, jsonify, render_template_string, request
from flask_limiter import Limiter, RequestLimit
from flask_limiter.errors import RateLimitExceeded

from federator import metrics
from federator.audit.trail import AuditUnavailable
from federator.config import Settings
from federator.names import LOOKUP_RATE_LIMITED
from federator.state import client_options

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
MARK = "_federator_lookup"
#: Endpoints whose POST runs a lookup (other views can be marked with ``lookup_limited``).
LOOKUP_ENDPOINTS = frozenset({"lookups.create_lookup", "lookups.retry_lookup",
                              "web_lookups.new_lookup"})


def lookup_limited(view: F) -> F:
    """Mark a view whose POST runs a lookup, so the practitioner's limits apply."""
    setattr(view, MARK, True)
    return view


def limit_string(per_minute: int, per_day: int) -> str:
    return f"{per_minute} per minute;{per_day} per day"


def storage_uri(settings: Settings) -> str:
    return settings.redis_url or "memory://"


def ran_a_lookup(response: Response) -> bool:
    """Only lookups that were sent count: a request refused for its input (4xx)
    reached no authority (it is audited as ``lookup.refused``)."""
    return response.status_code < 400


def practitioner_key() -> str:
    principal = g.get("principal")
    if principal is not None:
        return f"user:{principal.id}"
    return f"addr:{request.remote_addr or 'unknown'}"


def wants_json() -> bool:
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def init_limits(app: Flask, settings: Settings) -> Limiter:
    """Attach the limiter and apply the lookup limits; call after every
    blueprint is registered."""
    limiter = Limiter(
        practitioner_key,
        app=app,
        storage_uri=storage_uri(settings),
        # Every Redis key under FEDERATOR_REDIS_PREFIX: "<prefix>limits:LIMITER/...".
        # The shared state's client options: a dead pooled connection is tried once
        # more at once. No in-memory fallback: Redis down is a 503 (DESIGN).
        storage_options={**client_options(), "key_prefix": f"{settings.redis_prefix}limits"}
        if settings.redis_url else {},
        strategy="moving-window",
        headers_enabled=True,
        on_breach=_audit_breach,
        # Redis failing mid-request (after the check, at the deduction) was a 500; the
        # lookup itself still needs Redis for its breakers: it is refused with 503 there.
        swallow_errors=bool(settings.redis_url),
    )
    rule = limiter.limit(limit_string(settings.lookups_per_minute, settings.lookups_per_day),
                         methods=["POST"], deduct_when=ran_a_lookup)
    for endpoint, view in list(app.view_functions.items()):
        if endpoint in LOOKUP_ENDPOINTS or getattr(view, MARK, False):
            app.view_functions[endpoint] = rule(view)
    app.register_error_handler(429, _too_many)
    return limiter


def _audit_breach(limit: RequestLimit) -> None:
    metrics.rate_limited(request.endpoint)
    principal = g.get("principal")
    fields: dict[str, Any] = {"limit": str(limit.limit), "endpoint": request.endpoint}
    if principal is not None:
        fields.update(principal.actor(g.get("role") or "practitioner"))
    try:
        current_app.extensions["federator"].trail.append(LOOKUP_RATE_LIMITED, **fields)
    except AuditUnavailable:
        log.error("a rate-limited lookup could not be audited")


def _too_many(error: RateLimitExceeded) -> Response:
    message = ("You have asked for too many lookups in a short time "
               f"(the limit is {error.description}). Try again later.")
    if wants_json():
        response = jsonify({"code": 429, "status": "Too Many Requests", "message": message})
    else:
        response = Response(render_template_string(_PAGE, message=message),
                            mimetype="text/html")
    response.status_code = 429
    return response  # Flask-Limiter adds Retry-After (seconds) after the request


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Too many lookups: Federator</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main id="main-content"><h1>You have made too many lookups</h1>
<p>{{ message }}</p>
<p>Every lookup, and every refused one, is recorded in the audit trail.</p>
</main></body></html>
"""
