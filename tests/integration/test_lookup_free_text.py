"""Free text cannot carry a child, and widening is a decision: through the real
broker (API and form), with the trail read afterwards. A hostile practitioner
smuggles the child's NHS number into the purpose in every way the rules know;
nothing of it may reach the trail or an authority."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient
from support.budget import UNLIMITED

from federator.config import Settings
from federator.demo.federation import Federation, start_federation
from federator.demo.world import Child

pytestmark = pytest.mark.integration

PURPOSE = "Assessment under section 17: finding services already involved"
HTML = {"Accept": "text/html"}


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    federation = start_federation(tmp_path_factory.mktemp("free-text"), base=Settings(
        **UNLIMITED, deadline_default_ms=3000), notify="off")
    yield federation
    federation.stop()


@pytest.fixture(scope="module")
def token(fed: Federation) -> str:
    return fed.token("practitioner")


def child_of(fed: Federation) -> Child:
    return next(c for c in fed.world.children if not c.shielded and c.known_to)


def body_for(child: Child, **extra: Any) -> dict[str, Any]:
    return {"child": {"nhs_number": child.nhs_number, "given_name": child.given_name,
                      "family_name": child.family_name,
                      "date_of_birth": child.date_of_birth.isoformat(),
                      "postcodes": list(child.postcodes)},
            "purpose": PURPOSE,
            "basis": {"type": "consent", "given_by": "parent",
                      "given_on": (date.today() - timedelta(days=2)).isoformat(),
                      "reference": "CASE-77"}, **extra}


def post(fed: Federation, body: Any, token: str, path: str = "/api/v1/lookups"
         ) -> requests.Response:
    return requests.post(f"{fed.broker.url}{path}", json=body, timeout=30,
                         headers={"Authorization": f"Bearer {token}"})


def trail_text(fed: Federation) -> str:
    """Every record's canonical body, as stored."""
    with fed.app.extensions["federator"].engine.connect() as conn:
        from federator.storage import audit_records
        return "\n".join(conn.execute(audit_records.select().with_only_columns(
            audit_records.c.body)).scalars())


def smuggled(number: str) -> list[str]:
    full_width = "".join(chr(0xFF10 + int(d)) for d in number)
    arabic = "".join(chr(0x660 + int(d)) for d in number)
    return [f"{number[:3]} {number[3:6]} {number[6:]}", f"{number[:3]}-{number[3:6]}-{number[6:]}",
            full_width, arabic, "\u200b".join(number), " . ".join(number),
            f"{number[:3]}\u2013{number[3:6]}\u2013{number[6:]}"]


def test_the_api_refuses_a_purpose_carrying_the_childs_nhs_number_however_written(
        fed: Federation, token: str) -> None:
    child = child_of(fed)
    assert child.nhs_number
    for way in smuggled(child.nhs_number):
        answer = post(fed, body_for(child, purpose=f"{PURPOSE}; child {way}"), token)
        assert answer.status_code == 422, (way, answer.text)
        errors = answer.json()["errors"]["json"]
        assert list(errors) == ["purpose"], errors
        assert "NHS number" in errors["purpose"][0]
    stored = trail_text(fed)
    for way in smuggled(child.nhs_number):
        assert way not in stored
    assert not re.search(r"(?<!\d)" + child.nhs_number + r"(?!\d)", stored)


@pytest.mark.parametrize(("where", "what"), [
    (("purpose",), "name"), (("basis", "reference"), "date of birth"),
    (("purpose",), "postcode"),
])
def test_the_api_names_the_field_holding_the_childs_details(
        fed: Federation, token: str, where: tuple[str, ...], what: str) -> None:
    child = child_of(fed)
    text = {"name": f"{PURPOSE} about {child.family_name}",
            "date of birth": f"born {child.date_of_birth:%d/%m/%Y}",
            "postcode": f"{PURPOSE}, lives at {child.postcodes[0].replace(' ', '')}"}[what]
    body = body_for(child)
    place = body
    for key in where[:-1]:
        place = place[key]
    place[where[-1]] = text
    answer = post(fed, body, token)
    assert answer.status_code == 422, answer.text
    errors = answer.json()["errors"]["json"]
    for key in where:
        errors = errors[key]
    assert f"child's {what}" in errors[0]
    refused = fed.app.extensions["federator"].trail.records(event="lookup.refused")[-1]
    assert "purpose" not in refused or child.family_name not in refused["purpose"]


def page_client(fed: Federation) -> FlaskClient:
    client = fed.app.test_client()
    with client.session_transaction() as s:
        s["principal"] = {"id": "free-text-1", "name": "Priya Shah",
                          "roles": ["practitioner"], "organisation": "Leeds City Council"}
        s["signed_in_at"] = s["last_seen"] = time.time()
    return client


def test_the_form_shows_the_error_on_the_field(fed: Federation) -> None:
    child = child_of(fed)
    client = page_client(fed)
    form = client.get("/lookups/new", headers=HTML).get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form) or \
        re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert csrf
    given = date.today() - timedelta(days=2)
    number = child.nhs_number or "9434765919"
    dob = child.date_of_birth
    data = {"csrf_token": csrf.group(1), "nhs_number": number,
            "date_of_birth": [str(dob.day), str(dob.month), str(dob.year)],
            "postcode": child.postcodes[0], "basis_type": "consent", "given_by": "parent",
            "given_on": [str(given.day), str(given.month), str(given.year)],
            "purpose": f"{PURPOSE} {number[:3]} {number[3:6]} {number[6:]}",
            "consent_reference": f"CASE {child.date_of_birth:%Y-%m-%d}"}
    page = client.post("/lookups/new", headers=HTML, data=data)
    assert page.status_code == 422
    html = page.get_data(as_text=True)
    assert 'href="#purpose"' in html and 'href="#consent_reference"' in html
    assert 'id="purpose-error"' in html and 'id="consent_reference-error"' in html
    assert "Contains an NHS number" in html and "child&#39;s date of birth" in html


def test_scope_all_needs_its_own_reason_and_keeps_it(fed: Federation, token: str) -> None:
    child = child_of(fed)
    missing = post(fed, body_for(child, scope="all"), token)
    assert missing.status_code == 422
    assert list(missing.json()["errors"]["json"]) == ["scope_reason"]
    reason = "Family moved often; no current address on file"
    answer = post(fed, body_for(child, scope="all", scope_reason=reason), token)
    assert answer.status_code == 200, answer.text
    trail = fed.app.extensions["federator"].trail
    [requested] = trail.records(event="lookup.requested",
                                lookup_id=answer.json()["lookup_id"])
    assert requested["scope_reason"] == reason
    assert "scope_all" in {f["flag"] for f in requested["flags"]}


def test_areas_beyond_the_postcodes_are_flagged_for_review(fed: Federation,
                                                           token: str) -> None:
    child = child_of(fed)
    own = post(fed, body_for(child), token).json()["lookup_id"]
    trail = fed.app.extensions["federator"].trail
    [plain] = trail.records(event="lookup.requested", lookup_id=own)
    table = fed.app.extensions["federator"].lookups.postcode_table
    theirs = set(table.values())
    child_areas = set(plain["areas"])
    extra = sorted(theirs - child_areas)[:1]
    assert extra, "the demo's table has one area only"
    assert "areas_widened" not in {f["flag"] for f in plain["flags"]}
    # the child's own areas named again are no widening
    same = post(fed, body_for(child, areas=sorted(child_areas)), token).json()["lookup_id"]
    [again] = trail.records(event="lookup.requested", lookup_id=same)
    assert "areas_added" not in again
    wide = post(fed, body_for(child, areas=extra), token)
    assert wide.status_code == 200, wide.text
    [widened] = trail.records(event="lookup.requested", lookup_id=wide.json()["lookup_id"])
    assert widened["areas_added"] == extra
    [flag] = [f for f in widened["flags"] if f["flag"] == "areas_widened"]
    assert extra[0] in flag["reason"]
