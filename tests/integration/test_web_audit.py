"""The auditor's and the authority administrator's pages, over the real app and
database of a federation whose lookups went to kits over HTTP on loopback
(pages through Flask's test client with a signed-in session, as
test_web_pages.py does): filters, paging, flags with reasons, detail, "Was
this child looked up?", export with its checkpoint, the verification status,
subject access (page, print view, CSV, JSON), and every action audited."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient
from sqlalchemy import update
from support.insider import insider

from federator.audit.checkpoints import open_checkpoint
from federator.config import Settings
from federator.demo.federation import Federation, start_federation
from federator.demo.world import Child
from federator.storage import audit_records

pytestmark = pytest.mark.integration

HTML = {"Accept": "text/html"}
PURPOSE = "Assessment under section 17: finding services already involved"
AUDITOR = {"id": "auditor-7", "name": "Helen", "roles": ["auditor"],
           "organisation": "Leeds City Council", "job_title": "Auditor"}


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    directory: Path = tmp_path_factory.mktemp("web-audit")
    federation = start_federation(directory, base=Settings(
        database_url=f"sqlite:///{directory / 'broker.sqlite'}", deadline_default_ms=3000,
        audit_checkpoint_every=5))
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


@pytest.fixture(scope="module")
def looked_up(fed: Federation) -> dict[str, Any]:
    child: Child = next(c for c in fed.world.children if c.known_to and not c.shielded)
    token = fed.token("practitioner")

    def lookup(basis: dict[str, Any]) -> dict[str, Any]:
        response = requests.post(f"{fed.broker.url}/api/v1/lookups", timeout=30,
                                 headers={"Authorization": f"Bearer {token}"},
                                 json={"child": child.identity(), "purpose": PURPOSE,
                                       "basis": basis, "include_past": True})
        assert response.status_code == 200, response.text
        return dict(response.json())

    plain = lookup({"type": "consent", "given_by": "parent", "reference": "CASE-1",
                    "given_on": (date.today() - timedelta(days=1)).isoformat()})
    urgent = lookup({"type": "safeguarding", "justification":
                     "Risk of significant harm if the family were told of this enquiry."})
    return {"child": child, "plain": plain, "urgent": urgent}


def audit_events(fed: Federation, event: str) -> list[dict[str, Any]]:
    return fed.app.extensions["federator"].trail.records(event=event, limit=100000)


def test_the_list_filters_shows_flags_with_reasons_and_is_audited(fed, looked_up):
    client = client_as(fed, AUDITOR)
    page = client.get("/audit/records?flagged=true&event=lookup.requested", headers=HTML)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    body = page.get_data(as_text=True)
    urgent = audit_events(fed, "lookup.requested")[-1]
    assert urgent["lookup_id"] == looked_up["urgent"]["lookup_id"]
    assert f'id="record-{urgent["seq"]}"' in body
    assert "Safeguarding basis: consent was not sought." in body
    plain = next(r for r in audit_events(fed, "lookup.requested")
                 if r["lookup_id"] == looked_up["plain"]["lookup_id"])
    flagged_plain = bool(plain.get("flags"))
    assert (f'id="record-{plain["seq"]}"' in body) == flagged_plain
    consent = client.get("/audit/records?basis=consent", headers=HTML).get_data(as_text=True)
    assert f'id="record-{plain["seq"]}"' in consent
    assert f'id="record-{urgent["seq"]}"' not in consent
    elsewhere = client.get("/audit/records?authority=nowhere-cs", headers=HTML)
    assert 'id="no-records"' in elsewhere.get_data(as_text=True)
    [listed] = [r for r in audit_events(fed, "audit.records_listed")
                if r.get("query", {}).get("authority") == "nowhere-cs"]
    assert listed["actor_id"] == "auditor-7" and listed["via"] == "web"


def test_paging_with_the_cursor_and_sort(fed, looked_up):
    client = client_as(fed, AUDITOR)
    for _ in range(20):  # each list view is itself a record: more than one page of them
        client.get("/audit/records", headers=HTML)
    seen: list[int] = []
    url: str | None = "/audit/records?event=&sort=seq"
    while url:
        body = client.get(url, headers=HTML).get_data(as_text=True)
        seen += [int(s) for s in re.findall(r'<tr class="govuk-table__row" id="record-(\d+)"',
                                            body)]
        found = re.search(r'href="([^"]+)" rel="next"', body)
        url = found.group(1).replace("&amp;", "&") if found else None
        if len(seen) > 500:
            break
    assert seen == sorted(seen) and seen[0] == 1 and len(seen) == len(set(seen)) > 25
    newest = client.get("/audit/records?event=", headers=HTML).get_data(as_text=True)
    first = int(re.findall(r'id="record-(\d+)"', newest)[0])
    assert first >= seen[-1]


def test_bad_filters_are_named_on_the_page(fed):
    page = client_as(fed, AUDITOR).get("/audit/records?from=yesterday&basis=x", headers=HTML)
    assert page.status_code == 422
    body = page.get_data(as_text=True)
    assert "govuk-error-summary" in body
    assert 'href="#filter-from"' in body and 'href="#filter-basis"' in body
    assert 'value="yesterday"' in body  # kept as typed


def test_record_detail_and_missing_record(fed, looked_up):
    client = client_as(fed, AUDITOR)
    urgent = next(r for r in audit_events(fed, "lookup.requested")
                  if r["lookup_id"] == looked_up["urgent"]["lookup_id"])
    page = client.get(f"/audit/records/{urgent['seq']}", headers=HTML).get_data(as_text=True)
    assert urgent["hash"] in page and "Safeguarding basis: consent was not sought." in page
    assert "Risk of significant harm" in page  # the justification is for the auditor
    assert looked_up["child"].nhs_number not in page
    missing = client.get("/audit/records/999999", headers=HTML)
    assert missing.status_code == 404 and b"Page not found" in missing.data
    assert {r["record"] for r in audit_events(fed, "audit.record_viewed")} >= {
        urgent["seq"], 999999}


def test_was_this_child_looked_up(fed, looked_up):
    client = client_as(fed, AUDITOR)
    child = looked_up["child"]
    form = client.get("/audit/check-child", headers=HTML).get_data(as_text=True)
    answer = client.post("/audit/check-child", headers=HTML, data={
        "csrf_token": csrf(form), "nhs_number": child.nhs_number, "reason": "Complaint 12"})
    assert answer.status_code == 200
    body = answer.get_data(as_text=True)
    for lookup in (looked_up["plain"], looked_up["urgent"]):
        seqs = [r["seq"] for r in audit_events(fed, "lookup.requested")
                if r["lookup_id"] == lookup["lookup_id"]]
        assert f'href="/audit/records/{seqs[0]}"' in body
    assert "Searched by: NHS number." in body
    checked = audit_events(fed, "audit.child_checked")[-1]
    assert checked["reason"] == "Complaint 12" and checked["searched"] == ["nhs_number"]
    assert child.nhs_number not in json.dumps(checked)
    bad = client.post("/audit/check-child", headers=HTML, data={
        "csrf_token": csrf(form), "nhs_number": "9434765918"})
    assert bad.status_code == 422
    assert b'href="#nhs_number"' in bad.data and b"check digit" in bad.data
    no_token = client.post("/audit/check-child", headers=HTML,
                           data={"nhs_number": child.nhs_number})
    assert no_token.status_code == 400
    # the reason is kept verbatim in the trail: it cannot carry the child
    for reason in (f"asked about {child.family_name}", "NHS 943 476 5919"):
        carried = client.post("/audit/check-child", headers=HTML, data={
            "csrf_token": csrf(form), "nhs_number": child.nhs_number,
            "family_name": child.family_name, "given_name": child.given_name,
            "date_of_birth-day": str(child.date_of_birth.day),
            "date_of_birth-month": str(child.date_of_birth.month),
            "date_of_birth-year": str(child.date_of_birth.year), "reason": reason})
        assert carried.status_code == 422, reason
        assert b'href="#reason"' in carried.data


def test_export_downloads_with_the_checkpoint(fed, looked_up):
    client = client_as(fed, AUDITOR)
    today = date.today().isoformat()
    page = client.get("/audit/export", headers=HTML).get_data(as_text=True)
    assert "Download the latest checkpoint" in page
    token = csrf(page)
    exported = len(audit_events(fed, "audit.exported"))
    # a link (from another site, say) exports nothing and records nothing
    assert client.get(f"/audit/export/download?from={today}&format=csv").status_code == 405
    assert client.post("/audit/export/download", data={"from": today}).status_code == 400
    assert client.get("/audit/checkpoint.json").status_code == 405
    assert client.post("/audit/checkpoint.json").status_code == 400
    assert len(audit_events(fed, "audit.exported")) == exported
    response = client.post("/audit/export/download", data={
        "csrf_token": token, "from": today, "to": today, "format": "csv"})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Cache-Control"] == "no-store"
    checkpoint = open_checkpoint(response.headers["Audit-Checkpoint"],
                                 fed.app.extensions["federator"].keys.jwks())
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert looked_up["plain"]["lookup_id"] in {r["lookup_id"] for r in rows}
    assert int(rows[-1]["seq"]) <= checkpoint.tree_size
    assert audit_events(fed, "audit.exported")[-1]["query"] == {
        "from": today, "to": today, "format": "csv"}
    signed = json.loads(client.post("/audit/checkpoint.json", data={"csrf_token": token}
                                    ).get_data(as_text=True))
    assert open_checkpoint(signed["signed"], fed.app.extensions["federator"].keys.jwks())
    bad = client.post("/audit/export/download", headers=HTML, data={
        "csrf_token": token, "from": "soon", "format": "xml"})
    assert bad.status_code == 422
    assert b'href="#export-from"' in bad.data and b'href="#export-format"' in bad.data
    edge = client.post("/audit/export/download", headers=HTML, data={
        "csrf_token": token, "from": "0001-01-01", "to": "9999-12-31"})
    assert edge.status_code == 422
    assert b'href="#export-from"' in edge.data and b'href="#export-to"' in edge.data


@pytest.mark.parametrize("query", ["to=9999-12-31", "from=0001-01-01",
                                   "to=9999-12-31T23:00:00-05:00", "from=0001-01-01T00:00+05:00"])
def test_dates_at_the_edges_of_the_calendar_are_a_field_error(fed, query):
    client = client_as(fed, AUDITOR)
    page = client.get(f"/audit/records?{query}", headers=HTML)
    assert page.status_code == 422
    field = query.partition("=")[0]
    assert f'href="#filter-{field}"'.encode() in page.data


def test_status_is_on_every_auditor_page_and_shows_tampering(fed, looked_up):
    client = client_as(fed, AUDITOR)
    for path in ("/audit/records", "/audit/records/1", "/audit/check-child",
                 "/audit/export", "/audit/subject-access"):
        body = client.get(path, headers=HTML).get_data(as_text=True)
        assert 'id="trail-status"' in body, path
        assert "Verified" in body and "Latest signed checkpoint" in body, path
    engine = fed.app.extensions["federator"].engine
    with insider(engine) as conn:
        original = conn.execute(audit_records.select().where(audit_records.c.seq == 3)
                                ).mappings().one()
        conn.execute(update(audit_records).where(audit_records.c.seq == 3)
                     .values(body=original["body"].replace('"event"', '"event" ', 1)))
    try:
        page = client.get("/audit/records", headers=HTML).get_data(as_text=True)
        verified = client.post("/audit/verify", data={"csrf_token": csrf(page),
                                                      "next": "/audit/export"})
        assert verified.status_code == 303
        assert verified.headers["Location"].endswith("/audit/export")
        broken = client.get("/audit/export", headers=HTML).get_data(as_text=True)
        assert "The trail does not verify: record 3: record content does not match its hash" \
            in broken
        result = audit_events(fed, "audit.verified")[-1]["result"]
        assert result == {"ok": False, "count": 2, "seq": 3,
                          "reason": "record content does not match its hash"}
    finally:
        with insider(engine) as conn:
            conn.execute(update(audit_records).where(audit_records.c.seq == 3)
                         .values(body=original["body"]))
    page = client.get("/audit/records", headers=HTML).get_data(as_text=True)
    client.post("/audit/verify", data={"csrf_token": csrf(page), "next": "https://evil.example/"})
    healed = client.get("/audit/records", headers=HTML).get_data(as_text=True)
    assert "does not verify" not in healed and "Verified" in healed


def test_subject_access_page_print_view_and_downloads(fed, looked_up):
    client = client_as(fed, AUDITOR)
    child = looked_up["child"]
    form = client.get("/audit/subject-access", headers=HTML).get_data(as_text=True)
    data = {"csrf_token": csrf(form), "nhs_number": child.nhs_number,
            "request_reference": "SAR-2026-0142"}
    page = client.post("/audit/subject-access", headers=HTML, data=data)
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "Searched by: NHS number." in body
    assert "No name and date of birth were given" in body
    review = body.split('id="sar-review"')[1]
    assert looked_up["urgent"]["lookup_id"] in review
    assert looked_up["plain"]["lookup_id"] in body.split('id="sar-review"')[0]
    letter = client.post("/audit/subject-access", headers=HTML,
                         data={**data, "output": "print"}).get_data(as_text=True)
    assert "Who asked about your child" in letter and "SAR-2026-0142" in letter
    assert looked_up["plain"]["lookup_id"] in letter
    assert looked_up["urgent"]["lookup_id"] not in letter  # held for review
    assert "govuk-service-navigation" not in letter and "trail-status" not in letter
    with_review = client.post("/audit/subject-access", headers=HTML, data={
        **data, "output": "print", "include_review": "yes"}).get_data(as_text=True)
    assert looked_up["urgent"]["lookup_id"] in with_review
    as_csv = client.post("/audit/subject-access", data={**data, "output": "csv"})
    assert as_csv.mimetype == "text/csv"
    assert "SAR-2026-0142" in as_csv.headers["Content-Disposition"]
    rows = {r["lookup_id"]: r for r in csv.DictReader(io.StringIO(as_csv.get_data(True)))}
    assert rows[looked_up["urgent"]["lookup_id"]]["to_review"] == "yes"
    assert rows[looked_up["plain"]["lookup_id"]]["to_review"] == "no"
    as_json = client.post("/audit/subject-access", data={**data, "output": "json"})
    report = json.loads(as_json.get_data(as_text=True))
    assert report["searched"] == ["nhs_number"]
    assert [i["lookup_id"] for i in report["to_review"]] == [looked_up["urgent"]["lookup_id"]]
    outputs = [r["output"] for r in audit_events(fed, "audit.subject_access")
               if r.get("request_reference") == "SAR-2026-0142"]
    assert outputs == ["show", "print", "print", "csv", "json"]
    for text in (letter, as_csv.get_data(as_text=True), as_json.get_data(as_text=True)):
        for involvement in fed.world.involvements_for(child.child_ref):
            if involvement.professional_name:
                assert involvement.professional_name not in text
        assert child.given_name not in text and "Priya Shah" not in text
    empty = client.post("/audit/subject-access", headers=HTML, data={
        "csrf_token": csrf(form), "given_name": "Amara", "request_reference": ""})
    assert empty.status_code == 422
    assert b'href="#family_name"' in empty.data and b'href="#request_reference"' in empty.data


def test_authority_admin_sees_only_its_own_authority(fed, looked_up):
    authority = looked_up["child"].known_to[0]
    admin = {"id": "aa-1", "name": "Jo", "roles": ["authority-admin"],
             "organisation": "Somewhere", "authority": authority}
    body = client_as(fed, admin).get("/authority/lookups", headers=HTML).get_data(as_text=True)
    assert PURPOSE in body and authority in body
    others = {a["id"] for a in looked_up["plain"]["authorities"]} - {authority}
    for other in others:
        assert other not in body
    assert looked_up["child"].nhs_number not in body
    nobody = {**admin, "authority": "nowhere-cs"}
    empty = client_as(fed, nobody).get("/authority/lookups", headers=HTML)
    assert b"No lookup has reached your authority yet." in empty.data
    viewed = audit_events(fed, "audit.authority_viewed")
    assert {r["authority"] for r in viewed} >= {authority, "nowhere-cs"}
    no_authority = client_as(fed, {**admin, "authority": None})
    assert no_authority.get("/authority/lookups", headers=HTML).status_code == 403


@pytest.mark.parametrize(("method", "path"), [
    ("get", "/audit/records"), ("get", "/audit/records/1"), ("get", "/audit/check-child"),
    ("get", "/audit/export"), ("post", "/audit/export/download"),
    ("post", "/audit/checkpoint.json"), ("get", "/audit/subject-access")])
def test_auditor_pages_refuse_other_roles(fed, method, path):
    for role in ("practitioner", "broker-admin", "authority-admin"):
        other = {**AUDITOR, "roles": [role], "authority": "leeds-cs"}
        client = client_as(fed, other)
        form = {"csrf_token": csrf(client.get("/", headers=HTML, follow_redirects=True
                                              ).get_data(as_text=True))} \
            if method == "post" else None
        answer = client.open(path, method=method.upper(), headers=HTML, data=form)
        assert answer.status_code == 403, (path, role)
    anonymous = fed.app.test_client().open(path, method=method.upper(), headers=HTML)
    if method == "post":  # no session, so no CSRF token: refused before anything else
        assert anonymous.status_code == 400
    else:
        assert anonymous.status_code == 302 and "/sign-in" in anonymous.headers["Location"]
    auditor = {**AUDITOR, "roles": ["auditor"]}
    assert client_as(fed, auditor).get("/authority/lookups", headers=HTML).status_code == 403
