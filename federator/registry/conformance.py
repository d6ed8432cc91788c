""""Test this endpoint": the adapters' conformance checks, behind the URL guard."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from adapters.base import OutboundClient
from adapters.conformance import run_checks
from federator.lookup.routing import Endpoint
from federator.names import REGISTRY_CHECKED
from federator.registry.health import probe
from federator.registry.outbound import guarded_client, guarded_session
from federator.registry.urlguard import UnsafeURL, UrlGuard
from federator.signing import BrokerKeys

if TYPE_CHECKING:
    from federator.audit.trail import AuditTrail
    from federator.registry.service import Registry


def run_conformance(endpoint: Endpoint, guard: UrlGuard, keys: BrokerKeys,
                    client: OutboundClient) -> list[dict[str, Any]]:
    """Check by check: ``{"name", "passed", "detail"}``. The URL is checked again
    first (its name may resolve elsewhere now); nothing is sent when it is unsafe.
    Every connection is checked again as it is made (``client`` should be a
    ``guarded_client``; the checks' session is a ``guarded_session``)."""
    try:
        guard.check(endpoint.url)
    except UnsafeURL as e:
        return [{"name": "url_safe", "passed": False, "detail": str(e)}]
    safe = {"name": "url_safe", "passed": True, "detail": "resolves to allowed addresses"}
    if endpoint.protocol == "federator-lookup/1":
        # every connection of the checks is pinned to an address the guard allows
        with guarded_session(guard) as session:
            results = run_checks(endpoint.url, sign=keys.sign, audience=endpoint.id,
                                 timeout_s=endpoint.timeout_ms / 1000, key=keys.key,
                                 issuer=keys.issuer, session=session)
        return [safe, *(r.as_dict() for r in results)]
    # Other kinds have no conformance suite yet: their health resource is what we can
    # check. The suite's line says so, neither passed nor failed (``passed`` None).
    result = probe(client, endpoint)
    return [safe, {"name": "metadata" if endpoint.protocol == "fhir-r4" else "health",
                   "passed": result.ok, "detail": result.detail},
            {"name": "conformance_suite", "passed": None,
             "detail": f"not checked: no conformance suite for {endpoint.protocol} yet, "
                       "only its health resource was checked"}]


def checks_passed(results: list[dict[str, Any]]) -> bool:
    """Every check that ran passed (a line not checked, ``passed`` None, is neither)."""
    return all(r["passed"] is not False for r in results) and any(
        r["passed"] for r in results)


def check_and_record(registry: Registry, keys: BrokerKeys, trail: AuditTrail,
                     endpoint: Endpoint, actor: Mapping[str, Any]) -> dict[str, Any]:
    """Run the checks through guarded clients, keep the result (shown at approval)
    with what was tested (approval needs a pass of the endpoint as it is) and audit
    it (``registry.checked``; ``AuditUnavailable`` reaches the caller).

    The endpoint is read again with its connection target, in one read, so the
    target recorded is that of what the checks were run against."""
    found = registry.checkable(endpoint.id)
    endpoint, target = found if found is not None else (endpoint, None)
    client = guarded_client(registry.guard, user_agent="federator-check")
    try:
        results = run_conformance(endpoint, registry.guard, keys, client)
    finally:
        client.close()
    passed = checks_passed(results)
    registry.health.record(endpoint.id, "conformance", passed, None, results, target=target)
    trail.append(REGISTRY_CHECKED, **actor, endpoint=endpoint.id, passed=passed,
                 failed=[r["name"] for r in results if r["passed"] is False])
    return {"id": endpoint.id, "passed": passed, "checks": results}
