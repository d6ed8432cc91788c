"""The 429 both faces give a lookup beyond its budget.

The budget itself is counted in the lookup service (``federator.lookup.budget``),
once per lookup sent and once per lookup refused, whatever the route: the API,
the form, either streamed, a retry. A view needs no mark to be limited; a new
route that sends a lookup through ``LookupService.run`` is limited already.
This module only answers ``OverBudget``: JSON for the API (docs/protocol.md),
a page otherwise, both with ``Retry-After``.
"""

from __future__ import annotations

from flask import Flask, Response, jsonify, render_template_string, request

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
        response = Response(render_template_string(_PAGE, message=str(error)),
                            mimetype="text/html")
    response.status_code = 429
    response.headers["Retry-After"] = str(error.retry_after)
    response.headers["Cache-Control"] = "no-store"
    return response


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Too many lookups: Federator</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main id="main-content"><h1>You have made too many lookups</h1>
<p>{{ message }}</p>
<p>Nothing was sent. Reaching the limit is recorded in the audit trail.</p>
</main></body></html>
"""
