"""``POST /api/v1/audit/subject-access`` through the real parts (identity provider,
broker, kits over HTTP on loopback): a child known under an NHS number and two
spellings of the name; the report says which identities it searched, holds
safeguarding and section 47 lookups for review, is audited, and carries no
professional and no child detail beyond what the requester supplied."""

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

PURPOSE = "Assessment under section 17: finding services already involved"
SPELLING_B = "Ammara"  # the same child, written differently by another service


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    directory: Path = tmp_path_factory.mktemp("subject-access")
    federation = start_federation(directory, base=Settings(
        database_url=f"sqlite:///{directory / 'broker.sqlite'}", deadline_default_ms=3000))
    yield federation
    federation.stop()


def call(fed: Federation, token: str | None, body: Any, path: str = "/api/v1/audit/subject-access"
         ) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(f"{fed.broker.url}{path}", json=body, headers=headers, timeout=30)


def consent() -> dict[str, Any]:
    return {"type": "consent", "given_by": "parent", "reference": "CASE-1",
            "given_on": (date.today() - timedelta(days=1)).isoformat()}


ANSWERS: dict[str, dict[str, str]] = {}


def lookup(fed: Federation, token: str, child: dict[str, Any], basis: dict[str, Any]) -> str:
    response = call(fed, token, {"child": child, "purpose": PURPOSE, "basis": basis,
                                 "include_past": True}, "/api/v1/lookups")
    assert response.status_code == 200, response.text
    answer = response.json()
    ANSWERS[answer["lookup_id"]] = {a["id"]: a["outcome"] for a in answer["authorities"]}
    return str(answer["lookup_id"])


@pytest.fixture(scope="module")
def history(fed: Federation) -> dict[str, Any]:
    """Lookups of one child: by NHS number (with the name), by name A only, by
    name B only (safeguarding), by NHS number under section 47; and another child."""
    child: Child = next(c for c in fed.world.children if c.known_to and not c.shielded)
    other: Child = next(c for c in fed.world.children if c.nhs_number != child.nhs_number)
    dob = child.date_of_birth.isoformat()
    practitioner, health = fed.token("practitioner"), fed.token("practitioner-2")
    ids = {
        "nhs": lookup(fed, practitioner, {**child.identity()}, consent()),
        "name_a": lookup(fed, health, {"given_name": child.given_name,
                                       "family_name": child.family_name,
                                       "date_of_birth": dob,
                                       "postcodes": list(child.postcodes)}, consent()),
        "name_b": lookup(fed, practitioner, {"given_name": SPELLING_B,
                                             "family_name": child.family_name,
                                             "date_of_birth": dob}, {
            "type": "safeguarding", "justification": "Asking the family would put the "
            "child at risk of significant harm tonight."}),
        "s47": lookup(fed, practitioner, {"nhs_number": child.nhs_number}, {
            "type": "statutory", "power": "children-act-1989-s47", "reference": "S47-77"}),
        "other": lookup(fed, practitioner, {"nhs_number": other.nhs_number}, consent()),
    }
    return {"child": child, "ids": ids, "auditor": fed.token("auditor")}


def test_nhs_number_and_one_spelling_find_those_lookups_and_say_so(fed, history):
    child, ids = history["child"], history["ids"]
    supplied = {"nhs_number": child.nhs_number, "given_name": child.given_name,
                "family_name": child.family_name,
                "date_of_birth": child.date_of_birth.isoformat()}
    response = call(fed, history["auditor"], {"child": supplied,
                                              "request_reference": "SAR-2026-0142"})
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["searched"] == ["nhs_number", "name_dob"]
    assert report["request_reference"] == "SAR-2026-0142"
    found = [item["lookup_id"] for item in report["lookups"]]
    assert found == [ids["nhs"], ids["name_a"], ids["s47"]]  # oldest first
    assert [i["lookup_id"] for i in report["to_review"]] == [ids["s47"]]
    [by_health] = [i for i in report["lookups"] if i["lookup_id"] == ids["name_a"]]
    assert by_health["organisation"] == "Yorkshire Community Health NHS Trust"
    assert by_health["role"] == "practitioner" and by_health["purpose"] == PURPOSE
    assert by_health["basis_type"] == "consent"
    [first] = [i for i in report["lookups"] if i["lookup_id"] == ids["nhs"]]
    # each authority asked, with the outcome the practitioner was shown
    assert {a["id"]: a["outcome"] for a in first["authorities"]} == ANSWERS[ids["nhs"]]
    assert set(child.known_to) & {a["id"] for a in first["authorities"]}
    assert set(first) == {"lookup_id", "at", "organisation", "role", "purpose",
                          "basis_type", "authorities", "found_by"}
    assert {i["found_by"] for i in report["lookups"]} == {"details"}


def test_the_other_spelling_is_found_only_when_searched_and_held_for_review(fed, history):
    child, ids = history["child"], history["ids"]
    spelling_b = {"given_name": SPELLING_B, "family_name": child.family_name,
                  "date_of_birth": child.date_of_birth.isoformat()}
    report = call(fed, history["auditor"], {"child": spelling_b,
                                            "request_reference": "SAR-2026-0142"}).json()
    assert report["searched"] == ["name_dob"]
    assert [i["lookup_id"] for i in report["lookups"]] == [ids["name_b"]]
    assert [i["lookup_id"] for i in report["to_review"]] == [ids["name_b"]]
    assert report["to_review"][0]["basis_type"] == "safeguarding"
    nhs_only = call(fed, history["auditor"], {"child": {"nhs_number": child.nhs_number},
                                              "request_reference": "SAR-2"}).json()
    assert nhs_only["searched"] == ["nhs_number"]
    # spelling A was matched by the authorities to the same record as the NHS number
    # lookups (record_ref): found, and held for a person to check it is this child
    assert [(i["lookup_id"], i["found_by"]) for i in nhs_only["lookups"]] == [
        (ids["nhs"], "details"), (ids["name_a"], "record_match"), (ids["s47"], "details")]
    assert [i["lookup_id"] for i in nhs_only["to_review"]] == [ids["name_a"], ids["s47"]]


def test_no_professional_and_no_child_detail_beyond_what_was_supplied(fed, history):
    child = history["child"]
    report = call(fed, history["auditor"], {"child": {"nhs_number": child.nhs_number},
                                            "request_reference": "SAR-3"}).text
    involved = {i.professional_name for i in fed.world.involvements_for(child.child_ref)
                if i.professional_name}
    assert involved
    for name in involved:
        assert name not in report
    for detail in (child.given_name, child.family_name, child.date_of_birth.isoformat(),
                   *child.postcodes, child.nhs_number, "Priya Shah", "demo-practitioner",
                   "significant harm", "S47-77", "CASE-1"):
        assert detail not in report, detail


def test_the_request_is_audited_without_the_identity(fed, history):
    child = history["child"]
    call(fed, history["auditor"], {"child": {"nhs_number": child.nhs_number},
                                   "request_reference": "SAR-AUDITED"})
    trail = fed.app.extensions["federator"].trail
    [record] = [r for r in trail.records(event="audit.subject_access", limit=1000)
                if r.get("request_reference") == "SAR-AUDITED"]
    assert record["actor_role"] == "auditor" and record["searched"] == ["nhs_number"]
    assert record["found"] == 3 and record["to_review"] == 2  # spelling A by its match
    assert child.nhs_number not in json.dumps(record)
    assert trail.verify().ok


def test_bad_input_names_the_field_and_other_roles_are_refused(fed, history):
    bad = call(fed, history["auditor"], {"child": {"nhs_number": "9434765918"},
                                         "request_reference": ""})
    assert bad.status_code == 422
    errors = bad.json()["errors"]["json"]
    assert "nhs_number" in errors["child"] and "request_reference" in errors
    missing = call(fed, history["auditor"], {"child": {"given_name": "Amara"},
                                             "request_reference": "SAR-4"})
    assert missing.status_code == 422
    assert {"family_name", "date_of_birth"} <= set(missing.json()["errors"]["json"]["child"])
    body = {"child": {"nhs_number": history["child"].nhs_number}, "request_reference": "X"}
    for persona in ("practitioner", "broker-admin", "authority-admin:leeds-cs"):
        assert call(fed, fed.token(persona), body).status_code == 403
    assert call(fed, None, body).status_code == 401
    paths = requests.get(f"{fed.broker.url}/api/openapi.json", timeout=10).json()["paths"]
    assert "post" in paths["/api/v1/audit/subject-access"]
