"""A FHIR endpoint's policy through the real parts: registered by the authority's
admin through the registry API (field errors for a bad one, refused for a kit
endpoint), applied by the broker's FHIR client to a real FHIR server on loopback,
and a change that would share more sent back for a broker admin's approval."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from support.fhir_policy_server import DANA_NHS, LOCAL_FLAGS, PolicyFhirServer
from support.fhir_server import CLIENT_ID, CLIENT_SECRET
from support.web_client import pass_check

from federator.demo.federation import Federation, start_federation

pytestmark = pytest.mark.integration

ADMIN = "authority-admin:newtown-health"
ROUTE = "Newtown Health's named nurse for safeguarding, 0100 000 0001"


@pytest.fixture
def fed(tmp_path: Path) -> Iterator[Federation]:
    federation = start_federation(tmp_path / "demo", authorities=4)
    yield federation
    federation.stop()


@pytest.fixture
def fhir_server() -> Iterator[PolicyFhirServer]:
    server = PolicyFhirServer()
    yield server
    server.close()


def call(fed: Federation, method: str, path: str, persona: str, body: Any = None
         ) -> requests.Response:
    return requests.request(method, f"{fed.broker.url}/api/v1/registry{path}", json=body,
                            headers={"Authorization": f"Bearer {fed.token(persona)}"},
                            timeout=30)


def endpoint(server: PolicyFhirServer, **extra: Any) -> dict[str, Any]:
    return {"id": "newtown-health", "name": "Newtown Health", "code": "RXX",
            "coverage": ["national"], "protocol": "fhir-r4", "url": server.base,
            "timeout_ms": 5000, "contact": "ict@newtown.example",
            "credentials": {"token_url": f"{server.url}/token", "client_id": CLIENT_ID,
                            "client_secret": CLIENT_SECRET}, **extra}


def lookup(fed: Federation, child: dict[str, Any]) -> dict[str, Any]:
    basis = {"type": "consent", "given_by": "parent",
             "given_on": (date.today() - timedelta(days=3)).isoformat(),
             "reference": "CASE-123", "covers_sensitive_services": False}
    response = requests.post(
        f"{fed.broker.url}/api/v1/lookups", timeout=30,
        headers={"Authorization": f"Bearer {fed.token()}"},
        json={"child": child, "purpose": "Assessment under section 17: services involved",
              "basis": basis, "include_past": True})
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_a_bad_policy_is_named_field_by_field(fed: Federation,
                                              fhir_server: PolicyFhirServer) -> None:
    bad = call(fed, "POST", "/endpoints", ADMIN, endpoint(fhir_server, policy={
        "sensitive_codes": ["788122004", "788122005", "http://x.example|two words"],
        "restricted_labels": "R", "widen": True}))
    assert bad.status_code == 422, bad.text
    errors = bad.json()["errors"]["json"]["policy"]
    assert set(errors["sensitive_codes"]) == {"1", "2"}
    assert "SNOMED CT" in errors["sensitive_codes"]["1"][0]
    assert "restricted_labels" in errors and "widen" in errors
    kit = {**endpoint(fhir_server, policy={"restricted_route": ROUTE}),
           "protocol": "federator-lookup/1", "credentials": None}
    refused = call(fed, "POST", "/endpoints", ADMIN, kit)
    assert refused.status_code == 422 and "policy" in refused.json()["errors"]["json"]


def test_the_registered_policy_is_what_the_broker_applies(
        fed: Federation, fhir_server: PolicyFhirServer) -> None:
    policy = {"restricted_route": ROUTE, "restricted_labels": [f"{LOCAL_FLAGS}|DV-SHIELD"],
              "sensitive_codes": ["931821000000105"]}
    created = call(fed, "POST", "/endpoints", ADMIN, endpoint(fhir_server, policy=policy))
    assert created.status_code == 201, created.text
    assert created.json()["policy"] == {
        "restricted_labels": [f"{LOCAL_FLAGS}|DV-SHIELD"], "restricted_route": ROUTE,
        "sensitive_codes": ["http://snomed.info/sct|931821000000105"]}
    pass_check(fed.app, "newtown-health")
    approved = call(fed, "POST", "/endpoints/newtown-health/approve", "broker-admin")
    assert approved.json()["status"] == "active", approved.text

    # a label this endpoint is configured with: the route, nobody listed
    answer = lookup(fed, {"nhs_number": "9434765811", "postcodes": []})
    outcome = next(a for a in answer["authorities"] if a["id"] == "newtown-health")
    assert outcome["outcome"] == "match", outcome
    assert {"authority": "newtown-health", "text": (
        f"This child's details are protected. Contact {ROUTE}, who will pass your request "
        "to the right person.")} in answer["notices"]
    assert "Ola Open" not in {p["name"] for p in answer["professionals"]}
    # known only through a sexual health service, the consent not covering it
    hidden = lookup(fed, {"nhs_number": DANA_NHS, "postcodes": []})
    outcome = next(a for a in hidden["authorities"] if a["id"] == "newtown-health")
    assert outcome["outcome"] == "no_match", outcome
    assert "Nia Holt" not in {p["name"] for p in hidden["professionals"]}
    # what the practitioner is shown of this authority is what a child unknown there gets
    unknown = lookup(fed, {"nhs_number": "9434765889", "postcodes": []})
    other = next(a for a in unknown["authorities"] if a["id"] == "newtown-health")

    def shown(o: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in o.items() if "ms" not in k}

    assert shown(outcome) == shown(other)
    assert [n for n in hidden["notices"] if n["authority"] == "newtown-health"] == [
        n for n in unknown["notices"] if n["authority"] == "newtown-health"] == []


def test_a_policy_that_would_share_more_needs_approval_again(
        fed: Federation, fhir_server: PolicyFhirServer) -> None:
    created = call(fed, "POST", "/endpoints", ADMIN, endpoint(fhir_server, policy={
        "restricted_labels": [f"{LOCAL_FLAGS}|DV-SHIELD"]}))
    assert created.status_code == 201, created.text
    pass_check(fed.app, "newtown-health")
    assert call(fed, "POST", "/endpoints/newtown-health/approve", "broker-admin"
                ).json()["status"] == "active"
    # holding back more applies at once
    added = call(fed, "PATCH", "/endpoints/newtown-health", ADMIN, {"policy": {
        "restricted_labels": [f"{LOCAL_FLAGS}|DV-SHIELD"], "sensitive_codes": ["931821000000105"],
        "restricted_route": ROUTE}})
    assert added.json()["status"] == "active", added.text
    # dropping the default sensitive services, or a label, shares more: a broker admin decides
    for policy, said in [
            ({"include_default": False, "restricted_labels": [f"{LOCAL_FLAGS}|DV-SHIELD"]},
             "sensitive codes no longer held back: "),
            ({"sensitive_codes": ["931821000000105"]}, "restricted labels no longer honoured")]:
        changed = call(fed, "PATCH", "/endpoints/newtown-health", ADMIN, {"policy": policy})
        assert changed.json()["status"] == "pending", changed.text
        assert said in changed.json()["status_reason"]
        assert call(fed, "POST", "/endpoints/newtown-health/approve", "broker-admin"
                    ).json()["status"] == "active"
    # and an authority admin cannot approve it
    call(fed, "PATCH", "/endpoints/newtown-health", ADMIN, {"policy": {}})
    assert call(fed, "POST", "/endpoints/newtown-health/approve", ADMIN).status_code == 403
