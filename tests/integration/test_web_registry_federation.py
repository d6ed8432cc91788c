"""The registry pages against real adapters (a demo federation on loopback):
"Test this endpoint" check by check, the result shown at approval, and health
from real lookups without any of their content."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
import requests
from flask.testing import FlaskClient
from support.web_client import HTML, token

from federator.demo.federation import Federation, start_federation
from federator.demo.world import Authority, Child

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    federation = start_federation(tmp_path_factory.mktemp("registry-pages") / "demo",
                                  authorities=4)
    yield federation
    federation.stop()


def signed_in(fed: Federation, role: str, authority: str | None = None) -> FlaskClient:
    client = fed.app.test_client()
    with client.session_transaction() as s:
        s["principal"] = {"id": f"{role}-{authority}", "name": "Jo Admin", "roles": [role],
                          "organisation": "Council", "job_title": "Administrator",
                          "authority": authority}
        s["signed_in_at"] = s["last_seen"] = time.time()
    return client


def authority(fed: Federation, behaviour: str) -> Authority:
    return next(a for a in fed.world.authorities
                if a.behaviour == behaviour and a.coverage != ["national"])


def known_child(fed: Federation, authority_id: str) -> Child:
    return next(c for c in fed.world.children
                if authority_id in c.known_to and not c.shielded)


def test_this_endpoint_check_by_check_and_its_result_shown_at_approval(fed: Federation) -> None:
    council = authority(fed, "normal")
    admin = signed_in(fed, "authority-admin", council.id)
    path = f"/registry/endpoints/{council.id}"
    response = admin.post(f"{path}/check", data={"csrf_token": token(admin, path)},
                          headers=HTML)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Test result: passed" in page
    for check in ("URL safe", "Health", "Test lookup", "Within time limit", "Unsigned",
                  "Bad signature", "Tampered body", "Expired", "Wrong audience", "Replayed"):
        assert f">{check}<" in page, check
    assert "Failed<" not in page
    assert fed.app.extensions["federator"].trail.records(event="registry.checked")[-1][
        "endpoint"] == council.id

    # a new address: pending until approved; the approval page shows the last test
    url = fed.app.extensions["federator"].registry.get(council.id).url
    change = f"{path}/change"
    moved = admin.post(change, headers=HTML, data={
        "csrf_token": token(admin, change), "name": council.name, "code": council.code,
        "coverage": " ".join(council.coverage), "protocol": "federator-lookup/1",
        "url": url.replace("127.0.0.1", "localhost"), "timeout_ms": "3000", "contact": ""})
    assert moved.status_code == 303
    broker = signed_in(fed, "broker-admin")
    listing = broker.get("/registry/endpoints", headers=HTML).get_data(as_text=True)
    assert council.name.replace("'", "&#39;") in listing and ">Pending<" in listing
    review = broker.get(f"{path}/approve", headers=HTML).get_data(as_text=True)
    assert "Last test" in review and ">Replayed<" in review and "Passed" in review
    # the test passed for the old address: approving the new one is refused, saying why
    assert "of an earlier address" in review and "changed since it last passed" in review
    refused = broker.post(f"{path}/approve", headers=HTML,
                          data={"csrf_token": token(broker, f"{path}/approve"), "reason": ""})
    assert refused.status_code == 409
    assert "changed since it last passed" in refused.get_data(as_text=True)
    assert "govuk-error-summary" in refused.get_data(as_text=True)
    assert fed.app.extensions["federator"].registry.get(council.id).status == "pending"
    # tested again at the new address, it is approved
    retested = admin.post(f"{path}/check", data={"csrf_token": token(admin, path)},
                          headers=HTML)
    assert "Test result: passed" in retested.get_data(as_text=True)
    approved = broker.post(f"{path}/approve", headers=HTML,
                           data={"csrf_token": token(broker, f"{path}/approve"), "reason": ""})
    assert approved.status_code == 303
    assert fed.app.extensions["federator"].registry.get(council.id).status == "active"


def test_a_failing_endpoint_is_shown_failing_and_approval_warns(fed: Federation) -> None:
    down = authority(fed, "down")
    admin = signed_in(fed, "authority-admin", down.id)
    path = f"/registry/endpoints/{down.id}"
    page = admin.post(f"{path}/check", data={"csrf_token": token(admin, path)},
                      headers=HTML).get_data(as_text=True)
    assert "Test result: failed" in page and "GET /health failed" in page
    registry = fed.app.extensions["federator"].registry
    services = fed.app.extensions["federator"]
    registry.change(down.id, {"contact": "x"}, {"actor_id": "t", "actor_role": "t"},
                    services.trail)
    registry.transition(down.id, "suspend", "down", {"actor_id": "t", "actor_role": "t"},
                        services.trail)
    broker = signed_in(fed, "broker-admin")
    page = broker.get(path, headers=HTML).get_data(as_text=True)
    assert "Last test: failed" in page


def test_health_shows_outcomes_and_times_but_nothing_of_the_lookup(fed: Federation) -> None:
    council = authority(fed, "normal")
    child = known_child(fed, council.id)
    answer = requests.post(
        f"{fed.broker.url}/api/v1/lookups", timeout=30,
        headers={"Authorization": f"Bearer {fed.token()}"},
        json={"child": {"nhs_number": child.nhs_number, "postcodes": list(child.postcodes)},
              "purpose": "Assessment under section 17: finding services already involved",
              "basis": {"type": "consent", "given_by": "parent",
                        "given_on": (date.today() - timedelta(days=3)).isoformat(),
                        "reference": "CASE-123"},
              "include_past": True})
    assert answer.status_code == 200, answer.text
    names = [p["name"] for p in answer.json()["professionals"]]
    admin = signed_in(fed, "authority-admin", council.id)
    page = admin.get(f"/registry/endpoints/{council.id}", headers=HTML).get_data(as_text=True)
    health = page[page.index(">Health<"):]
    matches = re.search(r'>Match</th><td class="govuk-table__cell govuk-table__cell--numeric">'
                        r'(\d+)<', health)
    assert matches and int(matches.group(1)) >= 1
    assert "Answer time, p50" in health and " ms</dd>" in health
    for secret in (child.nhs_number, f"{child.given_name} {child.family_name}", "CASE-123",
                   *names):
        assert secret not in page
