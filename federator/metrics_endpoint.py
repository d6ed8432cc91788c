"""``GET /metrics``: the Prometheus scrape, and who may read it.

Who may read them: Prometheus is a machine, not a person signed in at an
identity provider, so ``/metrics`` takes a static bearer token
(``FEDERATOR_METRICS_TOKEN``, Prometheus' ``authorization.credentials_file``).
Without the setting the metrics are open in development and refused (403) in
production: per-authority volumes and failures are operational information
an outsider should not map, even though they hold nothing personal.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, jsonify, request

from federator import metrics
from federator.auth.access import public


def may_read(token: str, header: str, *, production: bool) -> bool:
    """Whether a scrape with this ``Authorization`` header may read the metrics."""
    if not token:
        return not production
    given = header[len("Bearer "):].strip() if header.startswith("Bearer ") else ""
    return hmac.compare_digest(given.encode(), token.encode())


#: ``GET /metrics``: a plain Flask blueprint, not part of the JSON API's document.
blp = public(Blueprint("metrics", __name__))


@blp.route("/metrics", methods=["GET"])
def scrape() -> Response:
    """Prometheus metrics (text format); a bearer token when FEDERATOR_METRICS_TOKEN is set."""
    settings = current_app.extensions["federator"].settings
    if not may_read(settings.metrics_token, request.headers.get("Authorization", ""),
                    production=settings.production):
        status = 401 if settings.metrics_token else 403
        response = jsonify(code=status, message="metrics need the scrape token "
                                                 "(FEDERATOR_METRICS_TOKEN)")
        response.status_code = status
        if status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="federator-metrics"'
        return response
    body, content_type = metrics.exposition()
    return Response(body, content_type=content_type, headers={"Cache-Control": "no-store"})
