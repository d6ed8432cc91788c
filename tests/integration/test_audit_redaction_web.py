"""Redaction by an auditor through the API (bearer tokens from the demo identity
provider over HTTP on loopback) and the page (signed-in session, CSRF), and subject
access saying from when the trail holds records after a prune: real SQLite and
PostgreSQL. Only auditors may redact; every refusal names its field."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from federator import create_app
from federator.audit.pseudonym import child_pseudonym
from federator.audit.retention import prune
from federator.auth.access import ACCESS
from federator.config import Settings
from federator.demo.idp import create_idp_app, fetch_token
from federator.demo.serving import ServedApp, bind

pytestmark = pytest.mark.integration

NHS = "9434765919"
AUDITOR = {"id": "a1", "name": "A", "roles": ["auditor"], "organisation": "L"}
PERSONAS = {"practitioner": "practitioner", "auditor": "auditor",
            "broker-admin": "broker-admin", "authority-admin": "authority-admin:leeds-cs"}


@pytest.fixture(scope="module")
def idp() -> Iterator[ServedApp]:
    served = bind(0)
    served.start(create_idp_app(served.url, authorities={"leeds-cs": "Leeds"}))
    yield served
    served.stop()


@pytest.fixture(scope="module")
def tokens(idp: ServedApp) -> dict[str, str]:
    return {role: fetch_token(idp.url, persona) for role, persona in PERSONAS.items()}


@pytest.fixture
def app(database_url: str, tmp_path: Path, idp: ServedApp) -> Iterator[Flask]:
    settings = Settings(env="development", instance_dir=tmp_path, oidc_issuer=idp.url,
                        database_url=database_url, secret_key="s" * 40, audit_key="a" * 40,
                        audit_checkpoint_every=2).checked()
    app = create_app(settings, migrate=True)
    trail = app.extensions["federator"].trail
    pseudonym = child_pseudonym({"nhs_number": NHS}, "a" * 40)
    for i, days in enumerate((400, 400, 1, 0)):
        trail.clock = lambda days=days, i=i: datetime.now(UTC) - timedelta(days=days, seconds=-i)
        trail.append("lookup.requested", lookup_id=f"L{i}", actor_id="p1",
                     actor_role="practitioner", actor_organisation="Leeds",
                     child_pseudonym=pseudonym,
                     purpose=f"Worried about the neighbour Mr Smith {i}", basis_type="safeguarding",
                     basis={"type": "safeguarding", "justification": f"Saw bruises {i}"},
                     authorities=["leeds-cs"])
    trail.clock = lambda: datetime.now(UTC)
    yield app
    app.extensions["federator"].engine.dispose()


def api(app: Flask, token: str | None, method: str, path: str, body: Any = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return app.test_client().open(path, method=method, json=body, headers=headers)


def signed_in(app: Flask, principal: dict[str, Any]) -> Any:
    client = app.test_client()
    with client.session_transaction() as s:
        s["principal"] = principal
        s["signed_in_at"] = s["last_seen"] = time.time()
    return client


def csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page)
    assert found, "no CSRF token on the page"
    return found.group(1)


def test_redaction_is_for_auditors_only_in_the_access_table():
    import federator.api.audit_redaction
    import federator.web.audit_redaction_pages  # noqa: F401 - each fills in ACCESS

    assert ACCESS["audit-redaction"] == ("auditor",)
    assert ACCESS["web_audit_redaction"] == ("auditor",)


def test_an_auditor_redacts_through_the_api_and_the_record_says_so(app, tokens):
    path = "/api/v1/audit/records/4/redact"
    body = {"field": "purpose", "reason": "Names a neighbour"}
    for role in ("practitioner", "broker-admin", "authority-admin"):
        assert api(app, tokens[role], "POST", path, body).status_code == 403, role
    assert api(app, None, "POST", path, body).status_code == 401
    trail = app.extensions["federator"].trail
    assert not trail.records(event="audit.redacted")  # nobody else redacted anything
    answer = api(app, tokens["auditor"], "POST", path, body)
    assert answer.status_code == 200, answer.get_json()
    done = answer.get_json()
    assert done["record"] == 4 and done["field"] == "purpose"
    record = api(app, tokens["auditor"], "GET", "/api/v1/audit/records/4").get_json()["record"]
    assert record["purpose"] is None and record["basis"]["justification"] == "Saw bruises 3"
    (note,) = record["redactions"]
    assert note["field"] == "purpose" and note["reason"] == "Names a neighbour"
    assert note["by"] == "demo-auditor-1" and note["role"] == "auditor"
    assert note["seq"] == done["redaction"]
    verdict = api(app, tokens["auditor"], "GET", "/api/v1/audit/verify").get_json()
    assert verdict["ok"] is True


def test_api_refusals_name_the_field(app, tokens):
    token = tokens["auditor"]
    cases = [
        ({"field": "name", "reason": "x"}, 422, "field", "Give the field to redact"),
        ({"field": "purpose"}, 422, "reason", "Missing data"),
        ({"field": "purpose", "reason": ""}, 422, "reason", "Give the reason"),
        ({"field": "purpose", "reason": "x", "extra": 1}, 422, "extra", "Unknown field"),
    ]
    for body, status, key, words in cases:
        answer = api(app, token, "POST", "/api/v1/audit/records/4/redact", body)
        assert answer.status_code == status, (body, answer.get_json())
        assert words in str(answer.get_json()["errors"]["json"][key]), answer.get_json()
    missing = api(app, token, "POST", "/api/v1/audit/records/999/redact",
                  {"field": "purpose", "reason": "x"})
    assert missing.status_code == 404 and "no record 999" in missing.get_json()["message"]
    old = app.extensions["federator"].trail.append("registry.updated", actor_id="b1",
                                                   endpoint="e1")
    answer = api(app, token, "POST", f"/api/v1/audit/records/{old['seq']}/redact",
                 {"field": "purpose", "reason": "x"})
    assert answer.status_code == 422
    assert "by pruning" in answer.get_json()["errors"]["json"]["field"][0]


def test_an_auditor_redacts_on_the_page(app):
    client = signed_in(app, AUDITOR)
    page = client.get("/audit/records/3", headers={"Accept": "text/html"})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "/audit/records/3/redact/basis.justification" in html
    form = client.get("/audit/records/3/redact/basis.justification")
    assert form.status_code == 200 and "Saw bruises 2" in form.get_data(as_text=True)
    token = csrf(form.get_data(as_text=True))
    url = "/audit/records/3/redact/basis.justification"
    assert client.post(url, data={"reason": "Third party"}).status_code == 400  # no CSRF
    empty = client.post(url, data={"reason": " ", "csrf_token": token})
    assert empty.status_code == 422
    assert "Say why you are redacting this text" in empty.get_data(as_text=True)
    done = client.post(url, data={"reason": "Third party", "csrf_token": token})
    assert done.status_code == 303 and done.headers["Location"].endswith("/audit/records/3")
    shown = client.get("/audit/records/3").get_data(as_text=True)
    assert "Saw bruises 2" not in shown
    assert re.search(r"basis.justification: redacted on \S+ by a1 \(auditor\): Third party",
                     shown), shown
    again = client.post(url, data={"reason": "Again", "csrf_token": token})
    assert again.status_code == 422 and "redacted already" in again.get_data(as_text=True)
    assert app.extensions["federator"].trail.verify().ok
    for role in ("practitioner", "broker-admin", "authority-admin"):
        other = signed_in(app, {**AUDITOR, "roles": [role], "authority": "leeds-cs"})
        assert other.get(url).status_code == 403
        assert other.post(url, data={"reason": "x", "csrf_token": token}).status_code in (
            400, 403)


def test_subject_access_says_from_when_records_exist_after_a_prune(app, tokens):
    trail = app.extensions["federator"].trail
    done = prune(trail, days=30, actor={"actor_id": "cli:ops", "actor_role": "operator"})
    assert done is not None and (done.first, done.last) == (1, 2)
    answer = api(app, tokens["auditor"], "POST", "/api/v1/audit/subject-access",
                 {"child": {"nhs_number": NHS}, "request_reference": "SAR-1"})
    assert answer.status_code == 200, answer.get_json()
    report = answer.get_json()
    assert [item["lookup_id"] for item in report["lookups"]] == ["L2", "L3"]
    third = trail.records(lookup_id="L2")[0]
    assert report["records_from"] == third["at"] and report["pruned_on"]
    client = signed_in(app, AUDITOR)
    shown = client.get("/audit/records/1").get_data(as_text=True)
    assert 'id="record-pruned"' in shown and "Worried" not in shown
    assert api(app, tokens["auditor"], "GET", "/api/v1/audit/records/1").get_json()[
        "record"]["pruned"] is True
    token = csrf(client.get("/audit/subject-access").get_data(as_text=True))
    page = client.post("/audit/subject-access", data={
        "csrf_token": token, "nhs_number": NHS, "request_reference": "SAR-2"})
    assert page.status_code == 200, page.get_data(as_text=True)
    assert re.search(r'id="sar-records-from">The audit trail holds records from [0-9-]+ '
                     r'[0-9:]+ \(UTC\): older records were pruned', page.get_data(as_text=True))
    verdict = api(app, tokens["auditor"], "GET", "/api/v1/audit/verify").get_json()
    assert verdict["ok"] is True
    assert verdict["pruned"][0]["first"] == 1 and verdict["pruned"][0]["last"] == 2
    assert verdict["pruned"][0]["prunes"][0]["by"] == "cli:ops"
