"""An authority admin's view of their endpoint: its status in words (a down
endpoint is not "Active" in green) and its health day by day, from the trail."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from flask import Flask
from support.web_client import HTML, app_on_fresh_database, pass_check, signed_in, token

pytestmark = pytest.mark.integration

app = pytest.fixture(app_on_fresh_database, name="app")


def active_endpoint(app: Flask) -> None:
    admin = signed_in(app, "authority-admin", "leeds-cs")
    form = {"csrf_token": token(admin, "/registry/endpoints/new"),
            "name": "Leeds Children's Services", "code": "E08000035", "coverage": "E08000035",
            "protocol": "federator-lookup/1", "url": "http://127.0.0.1:9/",
            "timeout_ms": "3000", "contact": "adapters@leeds.example"}
    assert admin.post("/registry/endpoints/new", data=form, headers=HTML).status_code == 303
    pass_check(app, "leeds-cs")
    broker = signed_in(app, "broker-admin")
    done = broker.post("/registry/endpoints/leeds-cs/approve", headers=HTML, data={
        "csrf_token": token(broker, "/registry/endpoints/leeds-cs"), "reason": "ok"})
    assert done.status_code == 303


def status(app: Flask) -> str:
    page = signed_in(app, "authority-admin", "leeds-cs").get(
        "/registry/endpoints/leeds-cs", headers=HTML).get_data(as_text=True)
    found = re.search(r'id="status">Status: <strong class="govuk-tag ([^"]+)">([^<]+)</strong>',
                      page)
    assert found, page
    return f"{found.group(2)} ({found.group(1)})"


def test_the_status_says_when_an_active_endpoint_is_not_answering(app: Flask) -> None:
    active_endpoint(app)
    assert status(app) == "Active (govuk-tag--green)"
    health = app.extensions["federator"].registry.health
    health.record("leeds-cs", "probe", False, None, "error: could not connect")
    assert status(app) == "Active, last health check failed (govuk-tag--red)"
    breakers = app.extensions["federator"].lookups.breakers
    breakers._open("leeds-cs")
    assert status(app) == "Active, not being asked (govuk-tag--red)"
    # the list of endpoints says the same
    listing = signed_in(app, "broker-admin").get("/registry/endpoints", headers=HTML)
    assert ">Active, not being asked</strong>" in listing.get_data(as_text=True)


def test_health_day_by_day_from_the_trail(app: Flask) -> None:
    active_endpoint(app)
    trail = app.extensions["federator"].trail
    outcomes = [
        [{"id": "leeds-cs", "outcome": "match", "latency_ms": 120}],
        [{"id": "leeds-cs", "outcome": "no_match", "latency_ms": 80}],
        [{"id": "leeds-cs", "outcome": "timeout", "latency_ms": 3000}],
        [{"id": "leeds-cs", "outcome": "unavailable", "latency_ms": 0,
          "not_asked": "circuit_open"}],
        [{"id": "other", "outcome": "error", "latency_ms": 5}],
    ]
    for i, kept in enumerate(outcomes):
        trail.append("lookup.completed", lookup_id=f"L{i}", actor_id="p", complete=True,
                     outcomes=kept, professionals=0)
    page = signed_in(app, "authority-admin", "leeds-cs").get(
        "/registry/endpoints/leeds-cs", headers=HTML).get_data(as_text=True)
    table = page[page.index('id="daily-health"'):]
    today = datetime.now(UTC).date()
    row = table[table.index(f"{today.day} {today:%B %Y}"):].split("</tr>")[0]
    cells = re.findall(r'numeric">([^<]*)</td>', row)
    # answered, declined, timeouts, errors, not asked (breaker open), p50, p95
    assert cells == ["2", "0", "1", "0", "1", "80 ms", "120 ms"]
