"""The 429 both faces give a lookup beyond its budget.

The budget itself is counted in the lookup service (``federator.lookup.budget``),
once per lookup sent and once per lookup refused, whatever the route: the API,
the form, either streamed, a retry. A view needs no mark to be limited; a new
route that sends a lookup through ``LookupService.run`` is limited already.
This module only answers ``OverBudget``: JSON for the API (docs/protocol.md),
a page otherwise, both with ``Retry-After``.
"""

from __future__ import annotations

from flask import Flask, Response, jsonify, request

from federator import metrics
from federator.lookup.budget import OverBudget


def wants_json() -> bool:
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def init_limits(app: Flask) -> None:
    """Answer ``OverBudget`` wherever a view lets it rise."""
    app.register_error_handler(OverBudget, _too_many)


def _too_many(error: OverBudget) -> Response:
    metrics.rate_limited(request.endpoint)
    if wants_json():
        response = jsonify(error.body())
    else:
        from federator.web.blueprint import render_page

        body, _, headers = render_page(
            "web/error.html", 429, title="You have made too many lookups",
            text=f"{error} Nothing was sent. Reaching the limit is recorded in the audit "
            "trail.", code=429)
        response = Response(body, mimetype="text/html", headers=headers)
    response.status_code = 429
    response.headers["Retry-After"] = str(error.retry_after)
    response.headers["Cache-Control"] = "no-store"
    return response

