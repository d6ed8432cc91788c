""""Test this endpoint": the adapters' conformance checks, behind the URL guard."""

from __future__ import annotations

from typing import Any

from adapters.base import OutboundClient
from adapters.conformance import run_checks
from federator.lookup.routing import Endpoint
from federator.registry.health import probe
from federator.registry.urlguard import UnsafeURL, UrlGuard
from federator.signing import BrokerKeys


def run_conformance(endpoint: Endpoint, guard: UrlGuard, keys: BrokerKeys,
                    client: OutboundClient) -> list[dict[str, Any]]:
    """Check by check: ``{"name", "passed", "detail"}``. The URL is checked again
    first (its name may resolve elsewhere now); nothing is sent when it is unsafe."""
    try:
        guard.check(endpoint.url)
    except UnsafeURL as e:
        return [{"name": "url_safe", "passed": False, "detail": str(e)}]
    safe = {"name": "url_safe", "passed": True, "detail": "resolves to allowed addresses"}
    if endpoint.protocol == "federator-lookup/1":
        results = run_checks(endpoint.url, sign=keys.sign, audience=endpoint.id,
                             timeout_s=endpoint.timeout_ms / 1000, key=keys.key,
                             issuer=keys.issuer)
        return [safe, *(r.as_dict() for r in results)]
    # Other kinds have no conformance suite yet: their health resource is what we can check.
    result = probe(client, endpoint)
    return [safe, {"name": "metadata" if endpoint.protocol == "fhir-r4" else "health",
                   "passed": result.ok, "detail": result.detail},
            {"name": "conformance_suite", "passed": False,
             "detail": f"no conformance suite for {endpoint.protocol} yet: only its "
                       "health resource was checked"}]
