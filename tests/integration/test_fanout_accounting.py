"""What the fan-out owes the trail and the other practitioners, whatever one client
does: the web form's stream finishes and audits a lookup whose browser left (before
reading, or in the middle); Redis down on the form keeps the practitioner's answers;
a practitioner's short deadline never opens a healthy authority's breaker; a lookup
that asked nobody is never "complete". Real broker, kits and sockets on loopback."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from support.fault_server import (
    DEADLINE_MS,
    SLACK_S,
    FaultServer,
    body,
    fault_code,
    post,
    seed_for,
    settings,
)
from support.own_redis import NEEDS_REDIS, on_own_redis

from federator.audit.trail import AuditUnavailable
from federator.demo.federation import Federation, start_federation

pytestmark = pytest.mark.integration

HTML = {"Accept": "text/html"}
STREAM = {"Accept": "text/event-stream"}


@pytest.fixture
def slow(tmp_path: Path) -> Iterator[tuple[Federation, FaultServer]]:
    server = FaultServer("slow:300")
    try:
        fed = start_federation(tmp_path / "demo", base=settings(breaker_failures=2,
                                                             deadline_default_ms=1000),
                               extra_seed=seed_for({"slow": server}, tmp_path / "f.toml"))
        try:
            yield fed, server
        finally:
            fed.stop()
    finally:
        server.stop()


def page_client(fed: Federation) -> Any:
    client = fed.app.test_client()
    with client.session_transaction() as s:
        s["principal"] = {"id": "user-web", "name": "Pat Web", "roles": ["practitioner"],
                          "organisation": "Leeds", "job_title": "Social worker"}
        s["signed_in_at"] = s["last_seen"] = time.time()
    return client


def form(client: Any, **extra: str) -> dict[str, Any]:
    page = client.get("/lookups/new", headers=HTML).get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or \
        re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    given = date.today() - timedelta(days=2)
    return {"csrf_token": token.group(1), "nhs_number": "9434765919",
            "areas": fault_code(0), "purpose": "Finding services already involved",
            "basis_type": "consent", "given_by": "parent",
            "given_on": [str(given.day), str(given.month), str(given.year)],
            "consent_reference": "CASE-88", **extra}


def completed_after(fed: Federation, before: set[str]) -> list[dict[str, Any]]:
    """The new ``lookup.completed`` records, waited for (the lookup finishes by its
    deadline after the client has gone)."""
    trail = fed.app.extensions["federator"].trail
    limit = time.monotonic() + DEADLINE_MS / 1000 + SLACK_S + 5
    while True:
        found = [r for r in trail.records(event="lookup.completed", limit=1000)
                 if r["lookup_id"] not in before]
        if found or time.monotonic() > limit:
            return found
        time.sleep(0.1)


def ours(answer: dict[str, Any]) -> dict[str, Any]:
    """The fault server's entry in an answer (the demo's national services answer too)."""
    [entry] = [a for a in answer["authorities"] if a["id"] == "fault-0"]
    return entry


def completed_ids(fed: Federation) -> set[str]:
    trail = fed.app.extensions["federator"].trail
    return {r["lookup_id"] for r in trail.records(event="lookup.completed", limit=1000)}


@pytest.mark.parametrize("read_first", [False, True], ids=["before-reading", "mid-stream"])
def test_a_browser_that_leaves_the_stream_still_gets_the_lookup_audited(
        slow: tuple[Federation, FaultServer], read_first: bool) -> None:
    fed, _ = slow
    client = page_client(fed)
    before = completed_ids(fed)
    response = client.post("/lookups/new", headers=STREAM, data=form(client),
                           buffered=False)
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    if read_first:
        assert next(iter(response.response)) is not None  # the stream has started
    response.close()  # the browser has gone
    [record] = completed_after(fed, before)
    assert record["client_gone"] is True
    assert [o["outcome"] for o in record["outcomes"] if o["id"] == "fault-0"] == ["match"]
    trail = fed.app.extensions["federator"].trail
    assert [r["event"] for r in trail.records(lookup_id=record["lookup_id"])] == [
        "lookup.requested", "lookup.completed"]


def test_a_short_deadline_never_opens_a_healthy_authoritys_breaker(
        slow: tuple[Federation, FaultServer]) -> None:
    """The authority answers in 300 ms; a practitioner who asks for 100 ms gets
    ``timeout`` each time, but the breaker (2 failures here) stays closed for the
    next practitioner, who waits the usual time."""
    fed, _ = slow
    token = fed.token()
    short = [post(fed, body(fed, [fault_code(0)], deadline_ms=100), token).json()
             for _ in range(3)]
    assert [ours(r)["outcome"] for r in short] == ["timeout"] * 3
    usual = post(fed, body(fed, [fault_code(0)], deadline_ms=DEADLINE_MS), token).json()
    assert ours(usual)["outcome"] == "match"


def test_a_hanging_authority_still_opens_its_breaker_at_the_usual_deadline(
        slow: tuple[Federation, FaultServer]) -> None:
    fed, server = slow
    server.fault = "hang"
    token = fed.token()
    usual = fed.app.extensions["federator"].lookups.policy.deadline_default_ms
    data = {k: v for k, v in body(fed, [fault_code(0)]).items() if k != "deadline_ms"}
    outcomes = [ours(post(fed, data, token).json()) for _ in range(3)]
    assert [o["outcome"] for o in outcomes] == ["timeout", "timeout", "unavailable"]
    assert "circuit open" in outcomes[2]["detail"]
    assert server.requests == 2
    # the default deadline was the one applied (none was asked for)
    assert all(usual // 2 <= o["latency_ms"] < usual + SLACK_S * 1000
               for o in outcomes[:2]), (outcomes, usual)


def test_a_suspended_endpoint_is_reported_unavailable_not_called_and_audited(
        slow: tuple[Federation, FaultServer]) -> None:
    fed, server = slow
    admin = requests.post(
        f"{fed.broker.url}/api/v1/registry/endpoints/fault-0/suspend",
        json={"reason": "maintenance tonight"}, timeout=30,
        headers={"Authorization": f"Bearer {fed.token('broker-admin')}"})
    assert admin.status_code == 200, admin.text
    fed.app.extensions["federator"].registry.invalidate()  # this process reads at once
    answer = post(fed, body(fed, [fault_code(0)]), fed.token()).json()
    entry = ours(answer)
    assert (entry["outcome"], entry["detail"]) == ("unavailable", "endpoint suspended")
    assert answer["complete"] is False
    assert server.requests == 0
    trail = fed.app.extensions["federator"].trail
    requested, done = trail.records(lookup_id=answer["lookup_id"])
    # not asked, so not listed as asked: apart, with the reason
    assert "fault-0" not in requested["authorities"]
    assert {"id": "fault-0", "reason": "suspended"} in requested["not_asked"]
    assert {o["id"]: (o["outcome"], o.get("not_asked")) for o in done["outcomes"]}[
        "fault-0"] == ("unavailable", "suspended")


def test_a_lookup_that_asked_nobody_is_not_complete(
        slow: tuple[Federation, FaultServer]) -> None:
    fed, _ = slow
    # narrowed to an authority no route reaches: nobody is asked
    answer = post(fed, {**body(fed, []), "authorities": ["no-such-authority"]},
                  fed.token()).json()
    assert answer["authorities"] == [], answer
    assert answer["complete"] is False
    assert "No registered authority covers" in answer["notices"][0]["text"]


@NEEDS_REDIS
def test_redis_down_on_the_form_says_so_and_sends_nothing(tmp_path: Path) -> None:
    """Sessions are in Redis too (issue 19): with Redis down nobody can be known to
    be signed in, so the form is not given back (it would be shown to whoever sent
    it, unchecked); the page says so, and where the answers still are."""
    with on_own_redis(tmp_path) as (fed, redis):
        client = page_client(fed)
        data = form(client, areas="")
        redis.stop()
        page = client.post("/lookups/new", headers=HTML, data=data)
        assert page.status_code == 503 and page.mimetype == "text/html"
        text = page.get_data(as_text=True)
        assert "cannot check who is signed in" in text and "Nothing was sent" in text
        assert "go back in your browser" in text
        assert "9434765919" not in text and "CASE-88" not in text
        trail = fed.app.extensions["federator"].trail
        assert trail.records(event="lookup.requested") == []


def test_an_answer_the_trail_cannot_record_is_not_shown(
        slow: tuple[Federation, FaultServer], monkeypatch: pytest.MonkeyPatch) -> None:
    """The trail fails after the question went out (the database is the real one;
    only ``lookup.completed`` is made to fail): the API says 503 and the form comes
    back with its answers, neither shows the professionals, and nothing is a 500."""
    fed, server = slow
    trail = fed.app.extensions["federator"].trail
    append = trail.append

    def failing(event: str, **fields: Any) -> dict[str, Any]:
        if event == "lookup.completed":
            raise AuditUnavailable("audit trail unavailable")
        return append(event, **fields)

    monkeypatch.setattr(trail, "append", failing)
    api = post(fed, body(fed, [fault_code(0)]), fed.token())
    assert api.status_code == 503, api.text
    assert "could not record its answer" in api.json()["message"]
    assert "Rowan Fault" not in api.text
    client = page_client(fed)
    page = client.post("/lookups/new", headers=HTML, data=form(client))
    text = page.get_data(as_text=True)
    assert page.status_code == 503 and "could not record its answer" in text
    assert "Rowan Fault" not in text and 'value="9434765919"' in text
    assert server.requests == 2  # both questions went out, audited as requested
    assert len(trail.records(event="lookup.requested")) == 2
    # streamed, both faces end with a failure event that says so, never the result
    streamed = post(fed, body(fed, [fault_code(0)]), fed.token(),
                    headers={"Accept": "text/event-stream"}).text
    assert "event: failure" in streamed and "could not record its answer" in streamed
    assert "event: result" not in streamed and "Rowan Fault" not in streamed
    progress = client.post("/lookups/new", data=form(client),
                           headers={"Accept": "text/event-stream"}).get_data(as_text=True)
    assert "event: failure" in progress and "could not record its answer" in progress
    assert "event: result" not in progress
