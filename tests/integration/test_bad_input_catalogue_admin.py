"""The bad input catalogue, beyond lookups: the registry, audit and subject-access
APIs and their pages. Control characters, lone surrogates, line breaks in
one-line values (which could split a header) and oversized strings get a clear
422 naming the field (or the page's error summary), never a 500 or a 503, and
nothing is changed or recorded; names in any script still work. On PostgreSQL,
which cannot store a NUL, so a value that slipped through would fail the audit
write."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient
from sqlalchemy import text
from support.budget import UNLIMITED
from support.services import postgres_schema

from federator.config import Settings
from federator.demo.federation import Federation, start_federation

pytestmark = pytest.mark.integration
CONTROL = "Contains a character that cannot be used here"
ONE_LINE = "Must be on one line"
NEW = "newtown-cs"  # an authority with no endpoint yet
BAD_TEXT = [  # (id, value, what the answer says): for one-line fields
    ("nul", "Leeds\u0000 CS", CONTROL), ("bell", "Leeds\u0007", CONTROL),
    ("escape", "\u001b[31mLeeds", CONTROL), ("c1-nel", "Leeds\u0085CS", CONTROL),
    ("surrogate", "Leeds \ud800", CONTROL), ("crlf", "Leeds\r\nSet-Cookie: owned=1", ONE_LINE),
    ("lf", "Leeds\nCS", ONE_LINE), ("line-separator", "Leeds\u2028CS", ONE_LINE),
    ("oversized", "Ñ" * 5_000, "Use at most"),
]


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    with postgres_schema() as database_url:
        federation = start_federation(
            Path(tmp_path_factory.mktemp("catalogue-admin")), notify="off",
            base=Settings(database_url=database_url, **UNLIMITED, deadline_default_ms=3000))
        yield federation
        federation.stop()


@pytest.fixture(scope="module")
def tokens(fed: Federation) -> dict[str, str]:
    first = fed.world.authorities[0].id
    return {"auditor": fed.token("auditor"), "broker": fed.token("broker-admin"),
            "new": fed.token(f"authority-admin:{NEW}"),
            "own": fed.token(f"authority-admin:{first}"), "first": first}


def call(fed: Federation, token: str, method: str, path: str, **kwargs: Any
         ) -> requests.Response:
    return requests.request(method, f"{fed.broker.url}{path}", timeout=30,
                            headers={"Authorization": f"Bearer {token}",
                                     **kwargs.pop("headers", {})}, **kwargs)


def raw_json(fed: Federation, token: str, method: str, path: str, body: Any
             ) -> requests.Response:
    """json.dumps escapes a lone surrogate (\\ud800), as a client's encoder would."""
    return call(fed, token, method, path, data=json.dumps(body),
                headers={"Content-Type": "application/json"})


def records(fed: Federation) -> int:
    with fed.app.extensions["federator"].engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM audit_records")).scalar_one())


def named(response: requests.Response, *path: str) -> str:
    assert response.status_code == 422, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith("application/json")
    node = response.json()["errors"]
    for key in path:
        assert key in node, (path, response.json())
        node = node[key]
    return " ".join(node) if isinstance(node, list) else json.dumps(node)


def registration(**extra: Any) -> dict[str, Any]:
    return {"name": "Newtown Children's Services", "code": "E08000099",
            "coverage": ["E08000099"], "protocol": "federator-lookup/1",
            "url": "http://127.0.0.1:9/", "contact": "adapters@newtown.example", **extra}


# -- registry API -----------------------------------------------------------------------

@pytest.mark.parametrize("field", ["name", "url", "id", "protocol", "code"])
@pytest.mark.parametrize(("what", "value", "says"), BAD_TEXT, ids=[b[0] for b in BAD_TEXT])
def test_registry_one_line_fields_refuse_bad_text_by_name(fed: Federation,
                                                          tokens: dict[str, str], field: str,
                                                          what: str, value: str,
                                                          says: str) -> None:
    before = records(fed)
    body = registration(**{field: value if field != "id" else f"{NEW}{value[5:]}"})
    response = raw_json(fed, tokens["new"], "POST", "/api/v1/registry/endpoints", body)
    message = named(response, "json", field)
    assert says in message or field in ("code", "id", "protocol")  # their own formats' words
    assert records(fed) == before
    assert call(fed, tokens["new"], "GET", f"/api/v1/registry/endpoints/{NEW}"
                ).status_code == 404


@pytest.mark.parametrize(("where", "body"), [
    (("contact",), registration(contact="Jo\u0000 Bloggs")),
    (("coverage",), registration(coverage=["E08000099\n"])),
    (("credentials",), registration(protocol="fhir-r4", credentials={
        "token_url": "https://idp.example/token\r\nX-Injected: 1", "client_id": "a",
        "client_secret": "b"})),
    (("credentials",), registration(credentials={"client\u0000id": "x"})),
    (("policy", "restricted_route"), registration(protocol="fhir-r4", policy={
        "restricted_route": "Duty desk\u0000"})),
    (("policy", "sensitive_codes", "0"), registration(protocol="fhir-r4", policy={
        "sensitive_codes": ["http://x.example|A\r\nX-Injected: 1"]})),
    (("policy", "restricted_labels"), registration(protocol="fhir-r4", policy={
        "restricted_labels": ["http://x.example|A"] * 51})),
], ids=["contact-nul", "coverage-newline", "token-url-crlf", "credential-key-nul",
        "policy-route-nul", "policy-code-crlf", "policy-labels-too-many"])
def test_registry_other_fields_refuse_bad_text_by_name(fed: Federation, tokens: dict[str, str],
                                                       where: tuple[str, ...],
                                                       body: dict[str, Any]) -> None:
    before = records(fed)
    named(raw_json(fed, tokens["new"], "POST", "/api/v1/registry/endpoints", body),
          "json", *where)
    assert records(fed) == before


def test_a_change_and_a_reason_refuse_bad_text_and_keep_good_text(
        fed: Federation, tokens: dict[str, str]) -> None:
    first = tokens["first"]
    path = f"/api/v1/registry/endpoints/{first}"
    before = records(fed)
    named(raw_json(fed, tokens["own"], "PATCH", path, {"contact": "Jo\u0007"}), "json",
          "contact")
    named(raw_json(fed, tokens["own"], "PATCH", path, {"name": "Two\r\nlines"}), "json", "name")
    for reason in ("Outage\u0000", "x" * 2_001, "\ud800"):
        named(raw_json(fed, tokens["own"], "POST", f"{path}/suspend", {"reason": reason}),
              "json", "reason")
    assert records(fed) == before
    assert call(fed, tokens["own"], "GET", path).json()["status"] == "active"
    # a reason may have lines, and a name any script: these are kept as given
    reason = "Planned outage:\r\n\tsee ticket CHG-12 (Siân O'Connor-Ñúñez, 佐藤)"
    response = raw_json(fed, tokens["own"], "POST", f"{path}/suspend", {"reason": reason})
    assert response.status_code == 200, response.text
    resumed = raw_json(fed, tokens["own"], "POST", f"{path}/resume", {})
    assert resumed.status_code == 200, resumed.text


@pytest.mark.parametrize("body", [
    "[" * 5_000 + "]" * 5_000, '{"a":' * 3_000 + "1" + "}" * 3_000,
    '{"timeout_ms": ' + "9" * 5_000 + "}", b'{"name": "\xff\xfe"}', "{nope",
], ids=["deep-array", "deep-object", "long-number", "bad-utf8", "broken"])
@pytest.mark.parametrize("api", ["registry", "check-child", "subject-access"])
def test_unreasonable_json_to_the_admin_apis_is_a_422(fed: Federation, tokens: dict[str, str],
                                                     body: str | bytes, api: str) -> None:
    token, path = {"registry": (tokens["new"], "/api/v1/registry/endpoints"),
                   "check-child": (tokens["auditor"], "/api/v1/audit/check-child"),
                   "subject-access": (tokens["auditor"], "/api/v1/audit/subject-access")}[api]
    response = call(fed, token, "POST", path, data=body,
                    headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text[:300]
    assert response.json()["code"] == 422


def test_a_health_window_in_other_digits_is_a_422(fed: Federation,
                                                  tokens: dict[str, str]) -> None:
    for hours in ("²", "١٢", "0", "99999999999999999999"):
        response = call(fed, tokens["own"], "GET",
                        f"/api/v1/registry/endpoints/{tokens['first']}/health",
                        params={"hours": hours})
        named(response, "json", "hours")


# -- audit API ----------------------------------------------------------------------------

@pytest.mark.parametrize(("param", "value"), [
    ("actor", "a\u0000b"), ("organisation", "Leeds\r\nSet-Cookie: owned=1"),
    ("authority", "x" * 5_000), ("event", "lookup.requested\n"), ("cursor", "12\n"),
    ("flag", "\u001b"), ("basis", "consent\u0000"), ("from", "2026-11-20\u0000"),
    ("to", "2026-11-20T09:30:00\u2028"), ("sort", "seq\r\n"),
])
def test_audit_record_filters_refuse_bad_text_by_name(fed: Federation, tokens: dict[str, str],
                                                      param: str, value: str) -> None:
    before = records(fed)
    response = call(fed, tokens["auditor"], "GET", "/api/v1/audit/records",
                    params={param: value})
    named(response, "query", param)
    assert records(fed) == before  # refused before anything was shown or audited


def test_export_format_cannot_reach_the_headers(fed: Federation, tokens: dict[str, str]) -> None:
    response = call(fed, tokens["auditor"], "GET", "/api/v1/audit/export",
                    params={"format": "csv\r\nSet-Cookie: owned=1"})
    named(response, "query", "format")
    assert "owned" not in json.dumps(dict(response.headers))
    cursor = call(fed, tokens["own"], "GET", "/api/v1/audit/authority/lookups",
                  params={"cursor": "1\n"})
    named(cursor, "query", "cursor")


@pytest.mark.parametrize(("where", "change"), [
    (("child", "given_name"), {"given_name": "An\u0000na"}),
    (("child", "family_name"), {"family_name": "Okafor\ud800"}),
    (("reason",), {"reason": "Complaint\u0007"}),
    (("reason",), {"reason": "r" * 501}),
], ids=["nul-name", "surrogate-name", "bell-reason", "oversized-reason"])
def test_check_child_refuses_bad_text_by_name(fed: Federation, tokens: dict[str, str],
                                              where: tuple[str, ...],
                                              change: dict[str, str]) -> None:
    child = {"given_name": "Siân", "family_name": "O'Connor-Ñúñez",
             "date_of_birth": "2015-03-27"}
    body: dict[str, Any] = {"child": child}
    for key, value in change.items():
        (body if key == "reason" else child)[key] = value
    before = records(fed)
    named(raw_json(fed, tokens["auditor"], "POST", "/api/v1/audit/check-child", body),
          "json", *where)
    assert records(fed) == before


def test_check_child_takes_names_in_any_script(fed: Federation, tokens: dict[str, str]) -> None:
    for given, family in (("Siân", "O'Connor-Ñúñez"), ("Анна", "佐藤"), ("Zoë", "Ní Bhriain")):
        response = raw_json(fed, tokens["auditor"], "POST", "/api/v1/audit/check-child", {
            "child": {"given_name": given, "family_name": family,
                      "date_of_birth": "2015-03-27"},
            "reason": "Complaint from the family:\nreference C-1"})
        assert response.status_code == 200, response.text


# -- subject access API ---------------------------------------------------------------------

@pytest.mark.parametrize(("what", "value", "says"), BAD_TEXT, ids=[b[0] for b in BAD_TEXT])
def test_subject_access_reference_refuses_bad_text(fed: Federation, tokens: dict[str, str],
                                                   what: str, value: str, says: str) -> None:
    before = records(fed)
    response = raw_json(fed, tokens["auditor"], "POST", "/api/v1/audit/subject-access", {
        "child": {"nhs_number": "9434765919"}, "request_reference": value})
    assert says in named(response, "json", "request_reference")
    assert records(fed) == before
    assert "owned" not in json.dumps(dict(response.headers))


def test_subject_access_takes_any_script(fed: Federation, tokens: dict[str, str]) -> None:
    response = raw_json(fed, tokens["auditor"], "POST", "/api/v1/audit/subject-access", {
        "child": {"given_name": "Zoë", "family_name": "Ní Bhriain-Wiśniewska",
                  "date_of_birth": "2015-03-27"}, "request_reference": "SAR-2026/Ñ-0142"})
    assert response.status_code == 200, response.text
    assert response.json()["request_reference"] == "SAR-2026/Ñ-0142"


# -- pages ---------------------------------------------------------------------------------

HTML = {"Accept": "text/html"}


def page_client(fed: Federation, role: str, authority: str | None = None) -> FlaskClient:
    client = fed.app.test_client()
    with client.session_transaction() as s:
        s["principal"] = {"id": f"{role}-1", "name": "Jo", "roles": [role],
                          "organisation": "Leeds", "job_title": "Officer",
                          "authority": authority}
        s["signed_in_at"] = s["last_seen"] = time.time()
    return client


def csrf(client: FlaskClient, path: str) -> str:
    page = client.get(path, headers=HTML).get_data(as_text=True)
    found = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page)
    assert found, page[:300]
    return found.group(1)


def summary_links(page: str) -> list[str]:
    assert "govuk-error-summary" in page
    return re.findall(r'<a href="#([a-z_-]+)"', page.split("govuk-error-summary", 1)[1]
                      .split("</ul>", 1)[0])


@pytest.mark.parametrize(("path", "role", "form", "field"), [
    ("/audit/check-child", "auditor", {"given_name": "An\u0000na", "family_name": "Okafor",
                                       "reason": "x"}, "given_name"),
    ("/audit/check-child", "auditor", {"nhs_number": "9434765919",
                                       "reason": "Complaint\u0007"}, "reason"),
    ("/audit/subject-access", "auditor", {"nhs_number": "9434765919",
                                          "request_reference": "SAR\r\n1"}, "request_reference"),
    ("/registry/endpoints/new", "authority-admin", {
        "name": "Newtown\u0000", "code": "E08000099", "coverage": "E08000099",
        "protocol": "federator-lookup/1", "url": "http://127.0.0.1:9/", "timeout_ms": "3000",
        "contact": "a"}, "name"),
    ("/registry/endpoints/new", "authority-admin", {
        "name": "Newtown", "code": "E08000099", "coverage": "E08000099\u001cE08000098",
        "protocol": "federator-lookup/1", "url": "http://127.0.0.1:9/", "timeout_ms": "²",
        "contact": "a"}, "coverage"),
    ("/lookups/new", "practitioner", {
        "nhs_number": "9434765919", "postcode": "LS6 2AB", "basis_type": "statutory",
        "power": "children-act-1989-s17", "statutory_reference": "CASE-1",
        "purpose": "Assessment under section 17\u0000 of the Act"}, "purpose"),
], ids=["check-child-name", "check-child-reason", "subject-access-reference",
        "register-name", "register-coverage-separator", "lookup-purpose"])
def test_pages_name_the_field_in_the_error_summary(fed: Federation, path: str, role: str,
                                                   form: dict[str, str], field: str) -> None:
    client = page_client(fed, role, NEW if role == "authority-admin" else None)
    before = records(fed)
    response = client.post(path, data={**form, "csrf_token": csrf(client, path)}, headers=HTML)
    assert response.status_code == 422, response.get_data(as_text=True)[:500]
    assert field in summary_links(response.get_data(as_text=True))
    refusals = 1 if path == "/lookups/new" else 0  # a refused lookup is audited
    assert records(fed) == before + refusals


def test_a_review_reason_that_cannot_be_stored_is_a_page_error(fed: Federation,
                                                               tokens: dict[str, str]) -> None:
    first = tokens["first"]
    client = page_client(fed, "authority-admin", first)
    path = f"/registry/endpoints/{first}/suspend"
    before = records(fed)
    response = client.post(path, data={"reason": "Outage\u0000", "csrf_token": csrf(
        client, path)}, headers=HTML)
    assert response.status_code == 422, response.get_data(as_text=True)[:500]
    assert summary_links(response.get_data(as_text=True)) == ["reason"]
    assert records(fed) == before


# -- ids in paths ----------------------------------------------------------------------------

ODD_IDS = ["a%00b", "leeds%0D%0ASet-Cookie:%20owned=1", "%E2%80%A8", "%C2%85x",
           "x" * 3_000, "%ED%A0%80"]  # the last: a UTF-8-encoded lone surrogate


@pytest.mark.parametrize("odd", ODD_IDS, ids=["nul", "crlf", "u2028", "nel", "long",
                                              "surrogate"])
def test_odd_ids_in_paths_are_a_4xx_never_a_500(fed: Federation, tokens: dict[str, str],
                                                odd: str) -> None:
    practitioner = fed.token("practitioner")
    for token, method, path in (
            (tokens["broker"], "GET", f"/api/v1/registry/endpoints/{odd}"),
            (tokens["broker"], "GET", f"/api/v1/registry/endpoints/{odd}/health"),
            (tokens["broker"], "POST", f"/api/v1/registry/endpoints/{odd}/approve"),
            (tokens["own"], "PATCH", f"/api/v1/registry/endpoints/{odd}"),
            (practitioner, "GET", f"/api/v1/lookups/{odd}/receipt"),
            (practitioner, "POST", f"/api/v1/lookups/{odd}/retry")):
        response = call(fed, token, method, path, json={})
        assert 400 <= response.status_code < 500, (method, path, response.status_code)
        assert "owned" not in json.dumps(dict(response.headers))
    pages = (("practitioner", None, f"/lookups/{odd}/receipt"),
             ("broker-admin", None, f"/registry/endpoints/{odd}"),
             ("authority-admin", tokens["first"], f"/registry/endpoints/{odd}/change"))
    for role, authority, path in pages:
        response = page_client(fed, role, authority).get(path, headers=HTML)
        assert 400 <= response.status_code < 500, (path, response.status_code)
