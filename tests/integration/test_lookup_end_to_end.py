"""One lookup through the real parts: identity provider, broker and adapter
kits, each served over HTTP on loopback, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from federator.config import Settings
from federator.demo.federation import Federation, start_federation
from federator.demo.world import Child

pytestmark = pytest.mark.integration


@pytest.fixture(params=["in-process", "redis"])
def federation(request: pytest.FixtureRequest, tmp_path: Path, database_url: str
               ) -> Iterator[Federation]:
    redis = request.param == "redis"
    fed = start_federation(tmp_path / "demo", base=Settings(
        database_url=database_url,
        redis_url=request.getfixturevalue("redis_url") if redis else None,
        redis_prefix=request.getfixturevalue("redis_prefix") if redis else "federator:",
        deadline_default_ms=5000))
    yield fed
    fed.stop()


def consent() -> dict[str, Any]:
    return {"type": "consent", "given_by": "parent",
            "given_on": (date.today() - timedelta(days=3)).isoformat(),
            "reference": "CASE-123", "covers_sensitive_services": False}


def body_for(child: Child, **extra: Any) -> dict[str, Any]:
    return {
        "child": {"nhs_number": child.nhs_number, "given_name": child.given_name,
                  "family_name": child.family_name,
                  "date_of_birth": child.date_of_birth.isoformat(),
                  "postcodes": list(child.postcodes)},
        "purpose": "Assessment under section 17: finding services already involved",
        "basis": consent(), "include_past": True, **extra,
    }


def lookup(fed: Federation, body: Any, token: str | None = None, **kwargs: Any
           ) -> requests.Response:
    headers = {"Authorization": f"Bearer {token or fed.token()}", **kwargs.pop("headers", {})}
    return requests.post(f"{fed.broker.url}/api/v1/lookups", json=body, headers=headers,
                         timeout=30, **kwargs)


def known_to_several(fed: Federation) -> Child:
    down = {a.id for a in fed.world.authorities if a.behaviour == "down"}
    slow = {a.id for a in fed.world.authorities if a.behaviour == "slow"}
    for child in fed.world.children:
        live = [a for a in child.known_to if a not in down | slow]
        if len(live) >= 2 and not child.shielded:
            return child
    raise AssertionError("the demo world has no child known to two live authorities")


def test_lookup_merges_professionals_from_every_authority_that_knows_the_child(
        federation: Federation) -> None:
    child = known_to_several(federation)
    response = lookup(federation, body_for(child))
    assert response.status_code == 200, response.text
    answer = response.json()
    outcomes = {a["id"]: a["outcome"] for a in answer["authorities"]}
    for authority in child.known_to:
        behaviour = federation.world.authority(authority).behaviour
        if behaviour == "normal":
            assert outcomes[authority] == "match", outcomes
    down = next(a.id for a in federation.world.authorities if a.behaviour == "down")
    if down in outcomes:
        assert outcomes[down] == "error"
        assert answer["complete"] is False
    expected = {i.professional_name for i in federation.world.involvements_for(child.child_ref)
                if federation.world.authority(i.authority_id).behaviour == "normal"
                and not i.sensitive}
    shown = {p["name"] for p in answer["professionals"]}
    assert expected <= shown
    sources = {a for p in answer["professionals"] for a in p["sources"]}
    assert sources <= {a for a, o in outcomes.items() if o == "match"}
    assert response.headers["Cache-Control"] == "no-store"


def test_down_authority_makes_the_answer_incomplete(federation: Federation) -> None:
    down = next(a for a in federation.world.authorities if a.behaviour == "down")
    response = lookup(federation, {**body_for(known_to_several(federation)),
                                   "areas": list(down.coverage)})
    answer = response.json()
    assert answer["complete"] is False
    [entry] = [a for a in answer["authorities"] if a["id"] == down.id]
    assert entry["outcome"] == "error"
    assert entry["detail"]


def test_lookup_is_audited_before_and_after(federation: Federation) -> None:
    child = known_to_several(federation)
    answer = lookup(federation, body_for(child)).json()
    trail = federation.app.extensions["federator"].trail
    records = trail.records(lookup_id=answer["lookup_id"])
    assert [r["event"] for r in records] == ["lookup.requested", "lookup.completed"]
    requested, completed = records
    assert requested["basis_type"] == "consent"
    assert child.nhs_number not in json.dumps(records)
    assert child.family_name not in json.dumps(records)
    assert {o["id"]: o["outcome"] for o in completed["outcomes"]} == {
        a["id"]: a["outcome"] for a in answer["authorities"]}
    assert trail.verify().ok


def test_bad_input_is_refused_with_field_names_and_audited(federation: Federation) -> None:
    body = body_for(known_to_several(federation))
    body["child"]["nhs_number"] = "9434765918"
    body["basis"]["given_on"] = (date.today() + timedelta(days=2)).isoformat()
    response = lookup(federation, body)
    assert response.status_code == 422
    errors = response.json()["errors"]["json"]
    assert "nhs_number" in errors["child"]
    trail = federation.app.extensions["federator"].trail
    refused = trail.records(event="lookup.refused")
    assert refused and "child.nhs_number" in refused[-1]["fields"]
    assert trail.records(event="lookup.requested") == []


def test_consent_in_the_future_is_refused_naming_the_field(federation: Federation) -> None:
    body = body_for(known_to_several(federation))
    body["basis"]["given_on"] = (date.today() + timedelta(days=2)).isoformat()
    response = lookup(federation, body)
    assert response.status_code == 422
    assert "given_on" in response.json()["errors"]["json"]["basis"]
    assert federation.app.extensions["federator"].trail.records(
        event="lookup.requested") == []


def test_anonymous_and_wrong_role_are_refused(federation: Federation) -> None:
    body = body_for(known_to_several(federation))
    anonymous = requests.post(f"{federation.broker.url}/api/v1/lookups", json=body, timeout=10)
    assert anonymous.status_code == 401
    auditor = lookup(federation, body, token=federation.token("auditor"))
    assert auditor.status_code == 403


def test_event_stream_sends_each_authority_then_the_result(federation: Federation) -> None:
    response = lookup(federation, body_for(known_to_several(federation)),
                      headers={"Accept": "text/event-stream"}, stream=True)
    assert response.headers["Content-Type"].startswith("text/event-stream")
    events = [block for block in response.text.split("\n\n") if block.strip()]
    kinds = [block.split("\n")[0].removeprefix("event: ") for block in events]
    assert kinds[-1] == "result"
    result = json.loads(events[-1].split("\n")[1].removeprefix("data: "))
    assert kinds.count("authority") == len(result["authorities"])
