"""What the trail says was asked, through the real parts (identity provider, broker,
kits over HTTP on loopback), on SQLite and PostgreSQL: ``lookup.requested`` lists
the authorities asked apart from those not asked; receipts, subject access and an
authority admin's view name only those asked; a lookup cut off by a crash is
closed by one ``lookup.interrupted`` (at start-up, or when its receipt is read)
and can be retried, while a lookup another broker is still answering is left."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from markupsafe import escape

from federator import create_app
from federator.audit.trail import AuditTrail
from federator.auth.principal import Principal
from federator.config import Settings
from federator.demo.federation import Federation, start_federation
from federator.demo.world import Child
from federator.lookup.interrupted import close_interrupted, interrupted_after_s
from federator.storage import make_engine, upgrade

pytestmark = pytest.mark.integration

PURPOSE = "Assessment under section 17: finding services already involved"


@pytest.fixture
def fed(tmp_path: Path, database_url: str) -> Iterator[Federation]:
    federation = start_federation(tmp_path / "demo", notify="off", base=Settings(
        database_url=database_url, deadline_default_ms=3000))
    yield federation
    federation.stop()


def call(fed: Federation, method: str, path: str, token: str, body: Any = None
         ) -> requests.Response:
    return requests.request(method, f"{fed.broker.url}{path}", json=body, timeout=30,
                            headers={"Authorization": f"Bearer {token}"})


def child_known_to_two(fed: Federation) -> Child:
    live = {a.id for a in fed.world.authorities if a.behaviour == "normal"}
    return next(c for c in fed.world.children
                if len(set(c.known_to) & live) >= 2 and not c.shielded)


def body_for(child: Child) -> dict[str, Any]:
    return {"child": child.identity(), "purpose": PURPOSE, "include_past": True,
            "basis": {"type": "consent", "given_by": "parent", "reference": "CASE-1",
                      "given_on": (date.today() - timedelta(days=1)).isoformat()}}


def test_only_the_authorities_asked_are_named_as_asked(fed: Federation) -> None:
    child = child_known_to_two(fed)
    live = {a.id for a in fed.world.authorities if a.behaviour == "normal"}
    paused, kept = sorted(set(child.known_to) & live)[:2]
    suspend = call(fed, "POST", f"/api/v1/registry/endpoints/{paused}/suspend",
                   fed.token("broker-admin"), {"reason": "maintenance tonight"})
    assert suspend.status_code == 200, suspend.text
    services = fed.app.extensions["federator"]
    services.registry.invalidate()
    practitioner = fed.token()
    answer = call(fed, "POST", "/api/v1/lookups", practitioner, body_for(child)).json()
    lookup_id = answer["lookup_id"]
    shown = {a["id"]: a["outcome"] for a in answer["authorities"]}
    assert shown[paused] == "unavailable" and shown[kept] == "match"  # the answer says all

    requested, completed = services.trail.records(lookup_id=lookup_id)
    assert paused not in requested["authorities"] and kept in requested["authorities"]
    assert requested["not_asked"] == [{"id": paused, "reason": "suspended"}]
    [marked] = [o for o in completed["outcomes"] if o["id"] == paused]
    assert marked["not_asked"] == "suspended"

    receipt = call(fed, "GET", f"/api/v1/lookups/{lookup_id}/receipt", practitioner).json()
    assert paused not in {a["id"] for a in receipt["authorities"]}
    assert kept in {a["id"] for a in receipt["authorities"]}
    assert [(n["id"], n["reason"]) for n in receipt["not_asked"]] == [(paused, "suspended")]
    html = receipt_page(fed, lookup_id, requested["actor_id"])
    asked_part, not_asked_part = html.split("<h2 class=\"govuk-heading-m\">Not asked</h2>")
    paused_name = str(escape(fed.world.authority(paused).name))
    assert paused_name not in asked_part.split("Authorities asked")[1]
    assert paused_name in not_asked_part.split("Proof it is in the audit trail")[0]
    assert "did not receive the child" in not_asked_part

    report = call(fed, "POST", "/api/v1/audit/subject-access", fed.token("auditor"), {
        "child": {"nhs_number": child.nhs_number}, "request_reference": "SAR-1"}).json()
    [item] = [i for i in report["lookups"] if i["lookup_id"] == lookup_id]
    named = {a["id"] for a in item["authorities"]}
    assert paused not in named and kept in named

    def seen_by(authority: str) -> set[str]:
        response = call(fed, "GET", "/api/v1/audit/authority/lookups",
                        fed.token(f"authority-admin:{authority}"))
        assert response.status_code == 200, response.text
        return {r["lookup_id"] for r in response.json()["records"]}

    # the suspended authority never received the child's identity: not its lookup
    assert lookup_id in seen_by(kept) and lookup_id not in seen_by(paused)
    auditor = fed.token("auditor")
    by_paused = call(fed, "GET", f"/api/v1/audit/records?authority={paused}", auditor).json()
    assert lookup_id not in {r.get("lookup_id") for r in by_paused["records"]}
    by_kept = call(fed, "GET", f"/api/v1/audit/records?authority={kept}", auditor).json()
    assert lookup_id in {r.get("lookup_id") for r in by_kept["records"]}
    assert services.trail.verify().ok


def receipt_page(fed: Federation, lookup_id: str, actor_id: str) -> str:
    """The receipt page as the practitioner who made the lookup sees it."""
    client = fed.app.test_client()
    with client.session_transaction() as s:
        s["principal"] = {"id": actor_id, "name": "Priya Shah", "roles": ["practitioner"],
                          "organisation": "Leeds City Council", "job_title": "Social worker"}
        s["signed_in_at"] = s["last_seen"] = time.time()
    page = client.get(f"/lookups/{lookup_id}/receipt", headers={"Accept": "text/html"})
    assert page.status_code == 200
    return page.get_data(as_text=True)


def principal_of(record: dict[str, Any]) -> Principal:
    return Principal(id=record["actor_id"], name="Sam Worker", roles=("practitioner",),
                     organisation=record["actor_organisation"])


def crashed_lookup(fed: Federation, child: Child, principal: Principal, *, at: datetime
                   ) -> str:
    """``lookup.requested`` written at ``at``, and the process gone before any
    answer: the events are never read nor closed, so nothing completes it."""
    trail = fed.app.extensions["federator"].trail
    trail.clock = lambda: at
    try:
        events = fed.app.extensions["federator"].lookups.run(body_for(child), principal)
    finally:
        trail.clock = lambda: datetime.now(UTC)
    return events.lookup_id


def start_again(fed: Federation) -> None:
    """Another broker process starting on the same database."""
    app = create_app(fed.settings)
    app.extensions["federator"].fanout.shutdown()
    app.extensions["federator"].engine.dispose()


def test_a_lookup_cut_off_by_a_crash_is_closed_once_and_can_be_retried(
        fed: Federation) -> None:
    child = child_known_to_two(fed)
    practitioner = fed.token()
    first = call(fed, "POST", "/api/v1/lookups", practitioner, body_for(child)).json()
    trail = fed.app.extensions["federator"].trail
    principal = principal_of(trail.records(lookup_id=first["lookup_id"])[0])
    long_ago = datetime.now(UTC) - timedelta(minutes=10)
    at_start = crashed_lookup(fed, child, principal, at=long_ago)
    on_receipt = crashed_lookup(fed, child, principal, at=long_ago)
    # answering now in another broker process: well within its deadline
    in_progress = crashed_lookup(fed, child, principal, at=datetime.now(UTC))

    # found by its receipt: closed then, and the receipt says so
    receipt = call(fed, "GET", f"/api/v1/lookups/{on_receipt}/receipt", practitioner).json()
    assert receipt["interrupted"] is True and receipt["complete"] is False
    assert {a["outcome"] for a in receipt["authorities"]} == {"interrupted"}
    assert [r["event"] for r in receipt["records"]] == ["lookup.requested",
                                                        "lookup.interrupted"]
    html = receipt_page(fed, on_receipt, principal.id)
    assert "Cut off: the broker stopped before the answers were recorded" in html
    assert "cut off before its answer was recorded" in html

    start_again(fed)
    start_again(fed)  # a second start (or a second process) writes nothing more

    def events(lookup_id: str) -> list[str]:
        return [r["event"] for r in trail.records(lookup_id=lookup_id)]

    assert events(at_start) == ["lookup.requested", "lookup.interrupted"]
    assert events(on_receipt) == ["lookup.requested", "lookup.interrupted"]
    assert events(in_progress) == ["lookup.requested"]
    assert events(first["lookup_id"]) == ["lookup.requested", "lookup.completed"]
    requested, interrupted = trail.records(lookup_id=at_start)
    # who may have received the child's identity: those asked
    assert interrupted["authorities"] == requested["authorities"]
    assert set(requested["authorities"]) >= set(child.known_to) - {
        a.id for a in fed.world.authorities if a.behaviour != "normal"}
    assert interrupted["requested_seq"] == requested["seq"]
    assert interrupted["child_pseudonym"] == requested["child_pseudonym"]

    # retried: the authorities asked count as not answered, and are asked again
    retry = call(fed, "POST", f"/api/v1/lookups/{at_start}/retry", practitioner,
                 body_for(child))
    assert retry.status_code == 200, retry.text
    again = retry.json()
    assert {a["id"] for a in again["authorities"]} == set(requested["authorities"])
    assert trail.records(lookup_id=again["lookup_id"])[0]["follows"] == at_start
    # the one still being answered cannot be retried yet
    busy = call(fed, "POST", f"/api/v1/lookups/{in_progress}/retry", practitioner,
                body_for(child))
    assert busy.status_code == 409 and "not finished" in busy.text
    assert trail.verify().ok


def test_two_brokers_starting_at_once_close_each_cut_off_lookup_once(
        tmp_path: Path, database_url: str) -> None:
    engine = make_engine(database_url, tmp_path)
    upgrade(engine)
    writer = AuditTrail(engine, checkpoint_every=0)
    # older than the start-up check reads: left for its receipt or retry to close
    writer.clock = lambda: datetime.now(UTC) - timedelta(days=8)
    writer.append("lookup.requested", lookup_id="long-ago", actor_id="sw-1",
                  deadline_ms=5000, authorities=["a"])
    writer.clock = lambda: datetime.now(UTC) - timedelta(minutes=5)
    cut = [f"cut-{i:03d}" for i in range(40)]
    for lookup_id in cut:
        writer.append("lookup.requested", lookup_id=lookup_id, actor_id="sw-1",
                      child_pseudonym="p", deadline_ms=5000, authorities=["a", "b"],
                      not_asked=[{"id": "c", "reason": "suspended"}])
    writer.append("lookup.requested", lookup_id="finished", actor_id="sw-1",
                  deadline_ms=5000, authorities=["a"])
    writer.append("lookup.completed", lookup_id="finished", actor_id="sw-1", outcomes=[])
    writer.clock = lambda: datetime.now(UTC)
    writer.append("lookup.requested", lookup_id="answering", actor_id="sw-1",
                  deadline_ms=5000, authorities=["a"])

    brokers = [AuditTrail(make_engine(database_url, tmp_path), checkpoint_every=0)
               for _ in range(2)]
    gate = threading.Barrier(len(brokers))
    closed: list[int] = []

    def start(trail: AuditTrail) -> None:
        gate.wait()
        closed.append(close_interrupted(trail, after_s=interrupted_after_s(15000), batch=7))

    threads = [threading.Thread(target=start, args=(t,)) for t in brokers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(closed) == len(cut)
    interrupted = writer.records(event="lookup.interrupted", limit=1000)
    assert sorted(r["lookup_id"] for r in interrupted) == cut  # one each, no more
    assert {tuple(r["authorities"]) for r in interrupted} == {("a", "b")}  # not "c"
    assert writer.verify().ok
    for trail in brokers:
        trail.engine.dispose()
    engine.dispose()
