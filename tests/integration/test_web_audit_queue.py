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
from sqlalchemy import update
from support.insider import insider

from federator.config import Settings
from federator.demo.federation import Federation, start_federation
from federator.demo.world import Child
from federator.storage import audit_records

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



def rows_on(page: str) -> list[int]:
    return [int(s) for s in re.findall(r'<tr class="govuk-table__row" id="lookup-(\d+)"', page)]


def test_one_row_per_lookup_in_plain_words_linking_its_records(fed, looked_up):
    client = client_as(fed, AUDITOR)
    page = client.get("/audit/lookups", headers=HTML)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    body = page.get_data(as_text=True)
    plain, urgent, refused = looked_up["plain"], looked_up["urgent"], looked_up["refused"]
    completions = {r["lookup_id"]: r for r in events(fed, "lookup.completed")}
    rows = rows_on(body)
    assert rows[:3] == [refused["seq"], urgent["seq"], plain["seq"]]  # newest first
    assert not set(rows) & {c["seq"] for c in completions.values()}  # joined, not rows
    words = text_of(body)
    for event in ("lookup.requested", "lookup.completed", "lookup.refused"):
        assert event not in words  # plain words, no event codes
    assert '{"' not in body and "&#34;" not in body  # no JSON
    assert f"Refused {refused['seq']}" in words
    assert "Consent, reference CASE-1" in words
    assert "Safeguarding basis: consent was not sought." in words
    assert re.search(r"\d{1,2} \w{3} 20\d\d, \d\d:\d\d (GMT|BST)", words)
    assert "knew the child" in words
    for lookup in (plain, urgent):
        done = completions[lookup["lookup_id"]]
        assert f'href="/audit/records/{lookup["seq"]}"' in body
        assert f'href="/audit/records/{done["seq"]}"' in body
        assert f'href="/audit/cases/{lookup["seq"]}"' in body
    assert 'href="/audit/practitioner?actor=demo-practitioner-1"' in body
    assert looked_up["child"].nhs_number not in body
    [listed] = [r for r in events(fed, "audit.lookups_listed") if not r["query"]][-1:]
    assert listed["actor_id"] == "auditor-7" and listed["via"] == "web"


def test_lookup_filters_and_their_errors(fed, looked_up):
    client = client_as(fed, AUDITOR)
    flagged = client.get("/audit/lookups?flagged=true", headers=HTML).get_data(as_text=True)
    assert looked_up["urgent"]["seq"] in rows_on(flagged)
    assert (looked_up["plain"]["seq"] in rows_on(flagged)) == bool(looked_up["plain"]["flags"])
    only = client.get("/audit/lookups?flag=safeguarding_basis", headers=HTML)
    assert rows_on(only.get_data(as_text=True)) == [looked_up["urgent"]["seq"]]
    refused = client.get("/audit/lookups?kind=refused", headers=HTML).get_data(as_text=True)
    assert rows_on(refused) == [looked_up["refused"]["seq"]]
    bad = client.get("/audit/lookups?from=yesterday&kind=x&flag=nope", headers=HTML)
    assert bad.status_code == 422
    body = bad.get_data(as_text=True)
    for name in ("from", "kind", "flag"):
        assert f'href="#filter-{name}"' in body and f'id="filter-{name}-error"' in body
    assert 'value="yesterday"' in body


def test_the_queue_and_a_review_written_to_the_trail_and_read_back(fed, looked_up):
    client = client_as(fed, AUDITOR)
    home = client.get("/", headers=HTML)  # an auditor starts at the queue
    assert home.status_code == 302 and home.headers["Location"].endswith("/audit/queue")
    case = looked_up["urgent"]["seq"]
    queue = client.get("/audit/queue", headers=HTML).get_data(as_text=True)
    assert case in rows_on(queue) and "Open" in text_of(queue)
    assert events(fed, "audit.queue_viewed")[-1]["query"] == {"state": "open"}
    page = client.get(f"/audit/cases/{case}", headers=HTML).get_data(as_text=True)
    assert "Nobody has reviewed this lookup yet." in page
    posted = client.post(f"/audit/cases/{case}", data={
        "csrf_token": csrf(page), "based_on": "0", "state": "raised_with_manager",
        "outcome": "Manager asked to confirm the safeguarding basis", "note": "Call booked"})
    assert posted.status_code == 303 and posted.headers["Location"].endswith(
        f"/audit/cases/{case}#review-history")
    [written] = [r for r in events(fed, "audit.review.") if r["case"] == case]
    assert written["event"] == "audit.review.raised_with_manager"
    assert written["actor_id"] == "auditor-7" and written["via"] == "web"
    assert written["outcome"] == "Manager asked to confirm the safeguarding basis"
    assert written["note"] == "Call booked" and written["based_on"] == 0
    shown = text_of(client.get(f"/audit/cases/{case}", headers=HTML).get_data(as_text=True))
    assert "Raised with the practitioner's manager: Manager asked to confirm" in \
        shown.replace("&#39;", "'")
    assert "auditor-7 (Leeds City Council)" in shown and "Call booked" in shown
    assert case not in rows_on(client.get("/audit/queue", headers=HTML).get_data(as_text=True))
    raised = client.get("/audit/queue?state=raised_with_manager", headers=HTML)
    assert rows_on(raised.get_data(as_text=True)) == [case]

    # another auditor, working from the page as it was before the change: refused
    other = client_as(fed, OTHER)
    token = csrf(other.get("/audit/queue", headers=HTML).get_data(as_text=True))
    stale = other.post(f"/audit/cases/{case}", headers=HTML, data={
        "csrf_token": token, "based_on": "0", "state": "no_concern", "outcome": "fine"})
    assert stale.status_code == 409
    assert "Another auditor changed this review" in stale.get_data(as_text=True)
    # a note naming the child is refused on its field; nothing is written
    fresh = other.get(f"/audit/cases/{case}", headers=HTML).get_data(as_text=True)
    based_on = re.search(r'name="based_on" id="review-based_on" value="(\d+)"', fresh)
    assert based_on and int(based_on.group(1)) == written["seq"]
    bad = other.post(f"/audit/cases/{case}", headers=HTML, data={
        "csrf_token": csrf(fresh), "based_on": based_on.group(1), "state": "referred",
        "outcome": "Referred to the LADO", "note": f"NHS {looked_up['child'].nhs_number}"})
    assert bad.status_code == 422
    body = bad.get_data(as_text=True)
    assert 'href="#review-note"' in body and "must not identify the child" in body
    assert [r["seq"] for r in events(fed, "audit.review.") if r["case"] == case] == [
        written["seq"]]
    viewed = [r for r in events(fed, "audit.case_viewed") if r["case"] == case]
    assert {r["actor_id"] for r in viewed} == {"auditor-7", "auditor-8"}
    assert fed.app.extensions["federator"].trail.verify().ok


def test_a_review_edited_in_the_database_breaks_the_trail_the_page_shows(fed, looked_up):
    client = client_as(fed, AUDITOR)
    case = looked_up["plain"]["seq"]
    page = client.get(f"/audit/cases/{case}", headers=HTML).get_data(as_text=True)
    assert client.post(f"/audit/cases/{case}", data={
        "csrf_token": csrf(page), "based_on": "0", "state": "referred",
        "outcome": "Referred to the designated officer"}).status_code == 303
    [review] = [r for r in events(fed, "audit.review.") if r["case"] == case]
    engine = fed.app.extensions["federator"].engine
    with insider(engine) as conn:  # quietly "close" it as no concern
        original = conn.execute(audit_records.select().where(
            audit_records.c.seq == review["seq"])).mappings().one()
        conn.execute(update(audit_records).where(audit_records.c.seq == review["seq"]).values(
            event="audit.review.no_concern",
            body=original["body"].replace("audit.review.referred", "audit.review.no_concern")))
    try:
        page = client.get(f"/audit/cases/{case}", headers=HTML).get_data(as_text=True)
        client.post("/audit/verify", data={"csrf_token": csrf(page),
                                           "next": f"/audit/cases/{case}"})
        shown = client.get(f"/audit/cases/{case}", headers=HTML).get_data(as_text=True)
        assert f"The trail does not verify: record {review['seq']}" in shown
    finally:
        with insider(engine) as conn:
            conn.execute(update(audit_records).where(audit_records.c.seq == review["seq"])
                         .values(event=original["event"], body=original["body"]))
    page = client.get("/audit/lookups", headers=HTML).get_data(as_text=True)
    client.post("/audit/verify", data={"csrf_token": csrf(page), "next": "/audit/lookups"})


def svg_bars(page: str, chart_id: str) -> dict[str, float]:
    svg = re.search(rf'<svg [^>]*id="{chart_id}".*?</svg>', page, re.S)
    assert svg, chart_id
    assert 'role="img"' in svg.group(0) and f'aria-labelledby="{chart_id}-title' in svg.group(0)
    return {label.replace("&#39;", "'"): float(value) for label, value in re.findall(
        r'data-label="([^"]*)" data-value="([^"]*)"', svg.group(0))}


def table_figures(page: str, table_id: str) -> dict[str, list[str]]:
    table = re.search(rf'<table [^>]*id="{table_id}".*?</table>', page, re.S)
    assert table, table_id
    rows = re.findall(r'<th scope="row" class="govuk-table__header">([^<]*)</th>(.*?)</tr>',
                      table.group(0), re.S)
    return {label.replace("&#39;", "'"): re.findall(r'numeric">([^<]*)</td>', cells)
            for label, cells in rows}


def test_the_overview_draws_the_figures_its_tables_give(fed, looked_up):
    client = client_as(fed, AUDITOR)
    page = client.get("/audit/overview", headers=HTML)
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    daily, daily_table = svg_bars(body, "overview-daily"), table_figures(body, "daily-table")
    assert len(daily) == 30 and {k: [str(int(v))] for k, v in daily.items()} == daily_table
    heads = [*events(fed, "lookup.requested"), *events(fed, "lookup.refused")]
    assert sum(daily.values()) == len(heads)
    flags = svg_bars(body, "overview-flags")
    assert flags["Safeguarding basis: consent not sought"] >= 1
    assert {k: [str(int(v))] for k, v in flags.items()} == table_figures(body, "flags-table")
    organisations = table_figures(body, "organisations-table")
    assert organisations["Leeds City Council"][0] == str(len(heads))
    share = table_figures(body, "out-of-hours-table")
    assert sum(int(v[0]) for v in share.values()) == len(heads)
    assert "<script" not in re.sub(r'<script type="module"[^>]*></script>|<script nonce[^>]*>'
                                   r'[^<]*</script>', "", body)  # no script draws a chart
    assert events(fed, "audit.overview_viewed")[-1]["actor_id"] == "auditor-7"
    too_long = client.get("/audit/overview?from=2020-01-01&to=2026-01-01", headers=HTML)
    assert too_long.status_code == 422 and 'href="#filter-from"' in too_long.get_data(
        as_text=True)


def test_a_practitioners_page(fed, looked_up):
    client = client_as(fed, AUDITOR)
    empty = client.get("/audit/practitioner", headers=HTML)
    assert empty.status_code == 200 and 'id="filter-actor"' in empty.get_data(as_text=True)
    page = client.get("/audit/practitioner?actor=demo-practitioner-1", headers=HTML)
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    mine = [r for r in [*events(fed, "lookup.requested"), *events(fed, "lookup.refused")]
            if r["actor_id"] == "demo-practitioner-1"]
    assert set(rows_on(body)) == {r["seq"] for r in mine}
    hours = svg_bars(body, "practitioner-hours")
    assert len(hours) == 24 and sum(hours.values()) == len(mine)
    assert svg_bars(body, "practitioner-flags")["Safeguarding basis: consent not sought"] >= 1
    assert f"{len(mine)} lookups" in text_of(body)
    [viewed] = events(fed, "audit.practitioner_viewed")[-1:]
    assert viewed["actor"] == "demo-practitioner-1" and viewed["actor_id"] == "auditor-7"
    nobody = client.get("/audit/practitioner?actor=nobody-9", headers=HTML)
    assert 'id="no-lookups"' in nobody.get_data(as_text=True)


ROUTES = [("GET", "/audit/lookups"), ("GET", "/audit/queue"), ("GET", "/audit/cases/1"),
          ("POST", "/audit/cases/1"), ("GET", "/audit/practitioner?actor=p1"),
          ("GET", "/audit/overview")]
OTHERS = {"practitioner": {"id": "p1", "name": "P", "roles": ["practitioner"],
                           "organisation": "L"},
          "broker-admin": {"id": "b1", "name": "B", "roles": ["broker-admin"],
                           "organisation": "F"},
          "authority-admin": {"id": "aa1", "name": "J", "roles": ["authority-admin"],
                              "organisation": "L", "authority": "leeds-cs"}}


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_only_auditors_reach_the_casework(fed, looked_up, method, path):
    """Beside the route × role matrix (test_auth_access.py), which covers these too."""
    fed.app.config["WTF_CSRF_ENABLED"] = False
    try:
        for role, principal in OTHERS.items():
            response = client_as(fed, principal).open(path, method=method, headers=HTML)
            assert response.status_code == 403, (role, method, path)
        anonymous = fed.app.test_client().open(path, method=method, headers=HTML)
        assert anonymous.status_code == 302 and "/sign-in" in anonymous.headers["Location"]
        assert client_as(fed, AUDITOR).open(path, method=method, headers=HTML
                                            ).status_code not in (302, 403, 500)
    finally:
        fed.app.config["WTF_CSRF_ENABLED"] = True


def test_two_auditors_saving_at_the_same_moment_one_is_refused(fed, looked_up, monkeypatch):
    """The other auditor's change lands after this one read the review and before
    it writes: the write, checked under the trail's head, is refused."""
    from federator.audit import case_queries
    from federator.web import audit_queue_pages

    client = client_as(fed, AUDITOR)
    case = looked_up["refused"]["seq"]
    page = client.get(f"/audit/cases/{case}", headers=HTML).get_data(as_text=True)
    trail = fed.app.extensions["federator"].trail
    read = case_queries.reviews

    def read_then_race(engine, **kwargs):
        found = read(engine, **kwargs)
        if kwargs.get("case") == case and not [r for r in events(fed, "audit.review.")
                                                if r["case"] == case]:
            trail.append("audit.review.no_concern", actor_id="auditor-8",
                         actor_role="auditor", actor_organisation="Leeds City Council",
                         case=case, state="no_concern", outcome="fine", based_on=0)
        return found

    monkeypatch.setattr(audit_queue_pages.cq, "reviews", read_then_race)
    raced = client.post(f"/audit/cases/{case}", headers=HTML, data={
        "csrf_token": csrf(page), "based_on": "0", "state": "referred", "outcome": "LADO"})
    assert raced.status_code == 409
    assert [r["event"] for r in events(fed, "audit.review.") if r["case"] == case] == [
        "audit.review.no_concern"]


@pytest.mark.parametrize("query", [
    "from=2026-01-01%00", "actor=a%00b", "organisation=" + "x" * 201, "cursor=" + "9" * 30,
    "flag=%ED%A0%80", "kind=look%0Aup"])
def test_bad_filters_are_a_named_422_never_a_500(fed, looked_up, query):
    client = client_as(fed, AUDITOR)
    for path in ("/audit/lookups", "/audit/queue", "/audit/overview", "/audit/practitioner"):
        response = client.get(f"{path}?{query}", headers=HTML)
        name = query.partition("=")[0]
        if name not in {"/audit/lookups": LOOKUP_NAMES, "/audit/queue": QUEUE_NAMES,
                        "/audit/overview": {"from", "to"}}.get(path, {"from", "to", "actor"}):
            assert response.status_code == 200, (path, query)  # not a filter there
            continue
        assert response.status_code == 422, (path, query)
        assert f'href="#filter-{name}"' in response.get_data(as_text=True), (path, query)


LOOKUP_NAMES = {"from", "to", "actor", "organisation", "basis", "kind", "flag", "flagged",
                "cursor"}
QUEUE_NAMES = {"state", "from", "to", "organisation", "flag", "cursor"}


@pytest.mark.parametrize(("field", "value"), [
    ("note", "a\x00b"), ("outcome", "two\nlines"), ("note", "x" * 5000),
    ("state", "open\x00"), ("outcome", "\u2028")])
def test_a_review_that_cannot_be_kept_is_named_never_a_500(fed, looked_up, field, value):
    client = client_as(fed, AUDITOR)
    case = looked_up["urgent"]["seq"]
    page = client.get(f"/audit/cases/{case}", headers=HTML).get_data(as_text=True)
    based_on = re.search(r'name="based_on" id="review-based_on" value="(\d+)"', page)
    assert based_on
    data = {"csrf_token": csrf(page), "based_on": based_on.group(1), "state": "no_concern",
            "outcome": "fine", "note": "", field: value}
    response = client.post(f"/audit/cases/{case}", headers=HTML, data=data)
    assert response.status_code == 422, response.get_data(as_text=True)[-500:]
    assert f'href="#review-{field}"' in response.get_data(as_text=True)


def test_a_case_number_past_any_record_is_a_404(fed):
    client = client_as(fed, AUDITOR)
    assert client.get("/audit/cases/" + "9" * 30, headers=HTML).status_code == 404
    assert client.get("/audit/cases/999999", headers=HTML).status_code == 404
