"""One lookup budget per person, tried as a practitioner out to get more than
it: mixing the API, the form, both streamed, and retries by either face; a
flood of refused lookups; a team sharing one organisation's ceiling. Against
the real parts (identity provider, broker, adapter kits on loopback), the
budget counted in-process and in the real Redis."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient

from federator.config import Settings
from federator.demo.federation import Federation, start_federation
from federator.demo.world import Child
from federator.lookup.budget import BudgetPolicy, LookupBudget
from federator.state import SharedState

pytestmark = pytest.mark.integration

PURPOSE = "Assessment under section 17: finding services already involved"
HTML = {"Accept": "text/html"}
STREAM = {"Accept": "text/event-stream"}


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    federation = start_federation(tmp_path_factory.mktemp("budget"), base=Settings(
        deadline_default_ms=3000), notify="off")
    yield federation
    federation.stop()


@pytest.fixture(params=["in-process", "redis"])
def budget_on(request: pytest.FixtureRequest, fed: Federation) -> Any:
    """Give the running broker a fresh budget of the given policy, counted in
    this process or in the real Redis (under the test's own key prefix)."""
    services = fed.app.extensions["federator"]
    before = services.lookups.budget
    url = prefix = None
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        prefix = request.getfixturevalue("redis_prefix")

    def install(**policy: int) -> LookupBudget:
        state = SharedState(url, prefix or "federator:")
        budget = LookupBudget(BudgetPolicy(**policy), state, redis_url=url,
                              prefix=prefix or "federator:")
        services.lookups.budget = budget
        return budget

    yield install
    services.lookups.budget = before


def consent() -> dict[str, Any]:
    return {"type": "consent", "given_by": "parent",
            "given_on": (date.today() - timedelta(days=2)).isoformat(),
            "reference": "CASE-77"}


def body_for(child: Child) -> dict[str, Any]:
    return {"child": {"nhs_number": child.nhs_number, "postcodes": list(child.postcodes)},
            "purpose": PURPOSE, "basis": consent()}


def down_child(fed: Federation) -> Child:
    """A child known to an authority that is down (so a retry has someone to ask)
    and to none that is slow (so each lookup is quick)."""
    for child in fed.world.children:
        kinds = {fed.world.authority(a).behaviour for a in child.known_to}
        if not child.shielded and "down" in kinds and "slow" not in kinds:
            return child
    raise AssertionError("the demo world has no such child")


def api(fed: Federation, path: str, body: Any, token: str, **headers: str
        ) -> requests.Response:
    return requests.post(f"{fed.broker.url}{path}", json=body, timeout=30,
                         headers={"Authorization": f"Bearer {token}", **headers})


def page_client(fed: Federation, principal_id: str = "demo-practitioner-1",
                organisation: str = "Leeds City Council") -> FlaskClient:
    client = fed.app.test_client()
    with client.session_transaction() as s:
        s["principal"] = {"id": principal_id, "name": "Priya Shah", "roles": ["practitioner"],
                          "organisation": organisation, "job_title": "Social worker"}
        s["signed_in_at"] = s["last_seen"] = time.time()
    return client


def csrf(client: FlaskClient) -> str:
    form = client.get("/lookups/new", headers=HTML).get_data(as_text=True)
    found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form) or \
        re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert found
    return found.group(1)


def form_for(child: Child, token: str) -> dict[str, Any]:
    given = date.today() - timedelta(days=2)
    return {"csrf_token": token, "nhs_number": child.nhs_number,
            "postcode": child.postcodes[0], "purpose": PURPOSE, "basis_type": "consent",
            "given_by": "parent",
            "given_on": [str(given.day), str(given.month), str(given.year)],
            "consent_reference": "CASE-77"}


def records(fed: Federation, event: str) -> list[dict[str, Any]]:
    return fed.app.extensions["federator"].trail.records(event=event, limit=100000)


def every_route(fed: Federation, child: Child, first_id: str, token: str,
                client: FlaskClient) -> dict[str, int]:
    """One lookup of ``child`` by each route that sends one: its status."""
    form = form_for(child, csrf(client))
    routes = {
        "api": lambda: api(fed, "/api/v1/lookups", body_for(child), token).status_code,
        "api stream": lambda: api(fed, "/api/v1/lookups", body_for(child), token,
                                  **STREAM).status_code,
        "api retry": lambda: api(fed, f"/api/v1/lookups/{first_id}/retry", body_for(child),
                                 token).status_code,
        "form": lambda: client.post("/lookups/new", headers=HTML, data=form).status_code,
        "form stream": lambda: client.post("/lookups/new", headers=STREAM,
                                           data=form).status_code,
        "form retry": lambda: client.post(f"/lookups/{first_id}/retry", headers=HTML,
                                          data=form).status_code,
    }
    return {name: call() for name, call in routes.items()}


def test_one_budget_whatever_the_route(fed: Federation, budget_on: Any) -> None:
    """Six lookups by six routes spend one budget of six (the API and the form each
    had their own before); the seventh, by any route, is refused; the trail keeps
    one ``lookup.rate_limited``, not one per attempt."""
    budget_on(per_minute=7, per_day=100)
    child = down_child(fed)
    token = fed.token("practitioner")
    client = page_client(fed)
    sent_before = len(records(fed, "lookup.requested"))
    limited_before = len(records(fed, "lookup.rate_limited"))
    first = api(fed, "/api/v1/lookups", body_for(child), token)
    assert first.status_code == 200, first.text
    first_id = first.json()["lookup_id"]

    assert every_route(fed, child, first_id, token, client) == dict.fromkeys(
        ("api", "api stream", "api retry", "form", "form stream", "form retry"), 200)
    assert len(records(fed, "lookup.requested")) == sent_before + 7

    over = every_route(fed, child, first_id, token, client)
    assert over == dict.fromkeys(over, 429), over
    assert len(records(fed, "lookup.requested")) == sent_before + 7  # nothing sent
    limited = records(fed, "lookup.rate_limited")[limited_before:]
    assert len(limited) == 1, limited
    [hit] = limited
    assert (hit["actor_id"], hit["scope"], hit["limit"]) == (
        "demo-practitioner-1", "practitioner", "7 per minute")
    assert [f["flag"] for f in hit["flags"]] == ["budget_reached"]

    refused = api(fed, "/api/v1/lookups", body_for(child), token)
    assert refused.status_code == 429
    body = refused.json()
    assert (body["scope"], body["limit"]) == ("practitioner", "7 per minute")
    assert 1 <= body["retry_after"] <= 60
    assert refused.headers["Retry-After"] == str(body["retry_after"])
    assert "every way of asking" in body["message"]
    sent = form_for(child, csrf(client))
    page = client.post("/lookups/new", headers=HTML, data=sent)
    assert page.status_code == 429 and "Retry-After" in page.headers
    html = page.get_data(as_text=True)
    assert "too many lookups" in html
    # the form again, not a bare error page: the reason in its error summary and
    # every answer kept, so the practitioner can send it when the limit allows
    assert "govuk-error-summary" in html and 'id="lookup-form"' in html
    assert all(f'value="{v}"' in html or f">{v}</textarea>" in html
               for k, v in sent.items() if k in ("nhs_number", "purpose", "consent_reference"))

    # another practitioner has a budget of their own
    assert api(fed, "/api/v1/lookups", body_for(child),
               fed.token("practitioner-2")).status_code == 200


def test_refused_lookups_have_a_budget_and_beyond_it_are_not_recorded_one_by_one(
        fed: Federation, budget_on: Any) -> None:
    """The flood that wrote 300 records: refused lookups (bad input by the API or
    the form, a retry refused) are recorded up to their own budget; beyond it the
    answer is 429 and the trail has one record of the fact."""
    budget_on(per_minute=5, per_day=100, refused_per_minute=4, refused_per_day=100)
    child = down_child(fed)
    token = fed.token("practitioner")
    client = page_client(fed)
    refused_before = len(records(fed, "lookup.refused"))
    limited_before = len(records(fed, "lookup.rate_limited"))
    bad = {**body_for(child), "purpose": "short"}

    statuses = [api(fed, "/api/v1/lookups", bad, token).status_code for _ in range(2)]
    statuses.append(client.post("/lookups/new", headers=HTML, data={
        **form_for(child, csrf(client)), "purpose": "short"}).status_code)
    statuses.append(api(fed, "/api/v1/lookups/01NOTFINISHED/retry", body_for(child),
                        token).status_code)  # 404: not a refusal, not counted
    started = time.monotonic()
    flood = [api(fed, "/api/v1/lookups", bad, token).status_code for _ in range(100)]
    rate = len(flood) / (time.monotonic() - started)
    assert statuses == [422, 422, 422, 404]
    assert flood[0] == 422 and flood[1:] == [429] * 99, flood
    assert len(records(fed, "lookup.refused")) == refused_before + 4
    limited = records(fed, "lookup.rate_limited")[limited_before:]
    assert [(r["scope"], r["limit"]) for r in limited] == [("refused", "4 per minute")]
    assert rate > 5, f"only {rate:.0f} refusals a second"

    # the sent budget is its own: a good lookup is still answered
    assert api(fed, "/api/v1/lookups", body_for(child), token).status_code == 200


def test_the_organisation_has_a_ceiling_one_person_cannot_spend(
        fed: Federation, budget_on: Any) -> None:
    budget_on(per_minute=2, per_day=100, organisation_per_minute=3,
              organisation_per_day=100)
    child = down_child(fed)
    one, two = page_client(fed, "team-a1", "Team A"), page_client(fed, "team-a2", "Team A")
    other = page_client(fed, "team-b1", "Team B")
    limited_before = len(records(fed, "lookup.rate_limited"))

    def ask(client: FlaskClient) -> int:
        return client.post("/lookups/new", headers=HTML,
                           data=form_for(child, csrf(client))).status_code

    # one practitioner beyond their own budget does not eat into the organisation's
    assert [ask(one) for _ in range(4)] == [200, 200, 429, 429]
    assert [ask(two) for _ in range(2)] == [200, 429]
    assert ask(other) == 200
    scopes = [(r["actor_id"], r["scope"])
              for r in records(fed, "lookup.rate_limited")[limited_before:]]
    assert scopes == [("team-a1", "practitioner"), ("team-a2", "organisation")]


def test_auditors_are_alerted_to_a_budget_reached(fed: Federation, budget_on: Any) -> None:
    budget_on(per_minute=1, per_day=100)
    child = down_child(fed)
    client = page_client(fed, "alerted-1")
    auditor = fed.app.test_client()
    with auditor.session_transaction() as s:
        s["principal"] = {"id": "auditor-1", "name": "Helen", "roles": ["auditor"],
                          "organisation": "Leeds City Council"}
        s["signed_in_at"] = s["last_seen"] = time.time()
    before = auditor.get("/audit/export", headers=HTML).get_data(as_text=True)
    counted = re.search(r"(\d+) records? flagged for a lookup limit reached", before)
    assert [client.post("/lookups/new", headers=HTML, data=form_for(child, csrf(client))
                        ).status_code for _ in range(3)] == [200, 429, 429]
    page = auditor.get("/audit/export", headers=HTML).get_data(as_text=True)
    found = re.search(r"(\d+) records? flagged for a lookup limit reached", page)
    assert found, page
    assert int(found.group(1)) == (int(counted.group(1)) if counted else 0) + 1
    assert "flag=budget_reached" in page
    listed = auditor.get("/audit/records?flag=budget_reached&event=", headers=HTML)
    assert listed.status_code == 200 and "alerted-1" in listed.get_data(as_text=True)


def test_lookups_sent_at_once_cannot_slip_past_the_budget(fed: Federation,
                                                          budget_on: Any) -> None:
    """Twenty lookups at the same moment, over HTTP, half streamed: exactly the
    budget's five are sent (each check takes its place atomically)."""
    from concurrent.futures import ThreadPoolExecutor
    budget_on(per_minute=5, per_day=100)
    child = down_child(fed)
    token = fed.token("practitioner")
    sent_before = len(records(fed, "lookup.requested"))

    def one(i: int) -> int:
        extra = STREAM if i % 2 else {}
        return api(fed, "/api/v1/lookups", body_for(child), token, **extra).status_code

    with ThreadPoolExecutor(20) as pool:
        statuses = sorted(pool.map(one, range(20)))
    assert statuses == [200] * 5 + [429] * 15
    assert len(records(fed, "lookup.requested")) == sent_before + 5
