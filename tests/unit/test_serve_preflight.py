from __future__ import annotations

from dataclasses import replace

from federator.config import Settings
from federator.lookup.routing import Endpoint
from federator.serve import preflight

PROD = Settings(env="production", secret_key="s" * 40, audit_key="a" * 40,
                oidc_issuer="https://idp.example", redis_url="redis://cache:6379/0")


def endpoint(url: str, status: str = "active") -> Endpoint:
    return Endpoint(id="leeds-cs", name="Leeds", code="E08000035", coverage=("E08000035",),
                    protocol="federator-lookup/1", url=url, timeout_ms=3000, contact="",
                    status=status)


def test_production_with_redis_and_https_endpoints_may_serve() -> None:
    assert preflight(PROD, workers=4, endpoints=[endpoint("https://a.example")]) == []


def test_several_workers_without_redis_are_refused() -> None:
    problems = preflight(replace(PROD, redis_url=None), workers=2, endpoints=[])
    assert len(problems) == 1 and "FEDERATOR_REDIS_URL" in problems[0]
    assert preflight(replace(PROD, redis_url=None), workers=1, endpoints=[]) == []


def test_http_endpoints_are_refused_in_production_but_not_suspended_ones() -> None:
    [problem] = preflight(PROD, workers=1, endpoints=[endpoint("http://a.example")])
    assert "leeds-cs" in problem
    assert preflight(PROD, workers=1,
                     endpoints=[endpoint("http://a.example", status="suspended")]) == []


def test_http_identity_provider_is_refused_in_production() -> None:
    [problem] = preflight(replace(PROD, oidc_issuer="http://idp.example"), workers=1,
                          endpoints=[])
    assert "OIDC_ISSUER" in problem


def test_development_is_not_checked() -> None:
    dev = replace(PROD, env="development", redis_url=None)
    assert preflight(dev, workers=8, endpoints=[endpoint("http://127.0.0.1:1")]) == []
