"""The kit as a real HTTP server, its keys fetched from a real JWKS server."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests

from adapters.kit.app import create_kit_app
from adapters.kit.keys import BrokerKeys
from adapters.protocol import encode_body, generate_signing_key, sign_request

pytestmark = pytest.mark.integration

AUTHORITY = "test-cs"
ISSUER = "federator-test-broker"


def test_health(kit_url):
    r = requests.get(f"{kit_url}/health", timeout=5)
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "protocol": "federator-lookup/1", "authority": AUTHORITY,
                        "witness": "none"}


def test_unknown_path_is_json_404(kit_url):
    r = requests.get(f"{kit_url}/admin", timeout=5)
    assert r.status_code == 404
    assert r.headers["Content-Type"].startswith("application/json")
    assert "error" in r.json()


def test_match_by_nhs_number(post_lookup, make_body, jwks_server):
    payload = make_body()
    r = post_lookup(payload)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["lookup_id"] == payload["lookup_id"]
    assert answer["status"] == "match"
    assert answer["confidence"] == 1.0
    assert [p["name"] for p in answer["professionals"]] == ["Jo Reed", "Sam Patel"]
    sam = answer["professionals"][1]
    assert sam == {"name": "Sam Patel", "role": "Social worker",
                   "service": "children's social care", "organisation": "Test Council",
                   "team": "West Team", "phone": "01632 960001",
                   "email": "sam.patel@example.invalid", "registration_number": "SW1",
                   "current": True, "from": "2025-09-01", "to": None}
    assert r.headers["Cache-Control"] == "no-store"
    assert jwks_server.fetches == 1


def test_match_on_demographics_with_past(post_lookup, make_body):
    child = {"given_name": "amara", "family_name": "OKAFOR", "date_of_birth": "2015-03-12",
             "postcodes": ["ls62ab"]}
    r = post_lookup(make_body(child=child, include_past=True))
    answer = r.json()
    assert answer["status"] == "match"
    past = [p for p in answer["professionals"] if not p["current"]]
    assert [(p["name"], p["to"]) for p in past] == [("Lee Hart", "2019-03-31")]


def test_no_match(post_lookup, make_body):
    child = {"given_name": "Nobody", "family_name": "Known", "date_of_birth": "2010-10-10",
             "postcodes": ["ZZ99 3AA"]}
    r = post_lookup(make_body(child=child))
    assert r.status_code == 200
    assert r.json()["status"] == "no_match"
    assert r.json()["professionals"] == []
    assert r.json()["notice"] is None


def test_possible_match_notice(post_lookup, make_body):
    # names right, date of birth wrong, postcode in the same sector only
    child = {"given_name": "Amara", "family_name": "Okafor", "date_of_birth": "2009-01-01",
             "postcodes": ["LS6 2ZZ"]}
    answer = post_lookup(make_body(child=child)).json()
    assert answer["status"] == "no_match"
    assert answer["professionals"] == []
    assert "possible match" in answer["notice"]
    assert "date_of_birth" in answer["ask_for"] and "record_ref" not in answer


def test_unsigned_is_refused(post_lookup):
    r = post_lookup(authorization=None)
    assert r.status_code == 401
    assert r.json() == {"error": "missing bearer token"}


def test_signed_by_another_key_is_refused(post_lookup):
    r = post_lookup(key=generate_signing_key("intruder"))
    assert r.status_code == 401
    assert r.json() == {"error": "bad signature"}


def test_expired_is_refused(post_lookup):
    r = post_lookup(now=time.time() - 600)
    assert r.status_code == 401
    assert r.json() == {"error": "token expired"}


def test_wrong_audience_is_refused(post_lookup):
    r = post_lookup(audience="another-authority")
    assert r.status_code == 401
    assert r.json() == {"error": "wrong audience"}


def test_wrong_issuer_is_refused(post_lookup):
    r = post_lookup(issuer="someone-else")
    assert r.status_code == 401
    assert r.json() == {"error": "wrong issuer"}


def test_replay_is_refused(post_lookup, broker_key, make_body):
    body = encode_body(make_body())
    token = sign_request(body, broker_key, issuer=ISSUER, audience=AUTHORITY)
    first = post_lookup(body=body, token=token)
    second = post_lookup(body=body, token=token)
    assert first.status_code == 200
    assert second.status_code == 401
    assert second.json() == {"error": "replayed request"}


def test_tampered_body_is_refused(post_lookup, make_body):
    original = make_body()
    tampered = make_body(lookup_id=original["lookup_id"],
                         basis={"type": "safeguarding", "justification": "x" * 50})
    r = post_lookup(body=encode_body(tampered), signed_body=encode_body(original))
    assert r.status_code == 401
    assert r.json() == {"error": "body hash mismatch"}


def test_oversized_body_is_413(post_lookup, make_body):
    payload = make_body(purpose="x" * 9000)
    r = post_lookup(payload)  # properly signed: refused for its size alone
    assert r.status_code == 413
    assert "error" in r.json()
    assert post_lookup(make_body(purpose="x" * 7000)).status_code == 200


def test_malformed_json_is_400(post_lookup):
    r = post_lookup(body=b'{"lookup_id": "L-1", "child": ')
    assert r.status_code == 400
    assert r.json() == {"error": "body is not valid JSON"}


def test_missing_fields_are_named(post_lookup):
    r = post_lookup(body=encode_body({"lookup_id": "L-1", "basis": {"type": "consent"}}))
    assert r.status_code == 400
    assert {"child", "purpose", "requester"} <= set(r.json()["fields"])


def test_shielded_child_gets_notice_only(post_lookup, make_body):
    child = {"given_name": "Ben", "family_name": "Shield", "date_of_birth": "2012-07-07",
             "postcodes": ["BD1 1AA"]}
    answer = post_lookup(make_body(child=child)).json()
    assert answer["status"] == "match"
    assert answer["professionals"] == []
    assert answer["notice"] == "Call the duty manager on 01632 960999"


def test_sensitive_hidden_under_s17_shown_under_s47(post_lookup, make_body):
    s17 = {"type": "statutory", "power": "children-act-1989-s17", "reference": "S17-1"}
    s47 = {"type": "statutory", "power": "children-act-1989-s47", "reference": "S47-1"}
    hidden = post_lookup(make_body(basis=s17)).json()
    shown = post_lookup(make_body(basis=s47)).json()
    assert [p["name"] for p in hidden["professionals"]] == ["Sam Patel"]
    assert "Jo Reed" in [p["name"] for p in shown["professionals"]]


def test_csv_change_is_seen_without_restart(post_lookup, make_body, kit_csv: Path):
    child = {"given_name": "Cara", "family_name": "New", "date_of_birth": "2020-02-02",
             "postcodes": ["LS1 1AA"]}
    assert post_lookup(make_body(child=child)).json()["status"] == "no_match"
    with kit_csv.open("a", encoding="utf-8") as fh:
        fh.write("C-3,,Cara,New,2020-02-02,LS1 1AA,false,,Ola Fenn,Family support worker,"
                 "early help,false,Test Council,,01632 960005,,,2026-01-01,\n")
    answer = post_lookup(make_body(child=child)).json()
    assert answer["status"] == "match"
    assert [p["name"] for p in answer["professionals"]] == ["Ola Fenn"]


def test_audit_log_records_requests(post_lookup, make_body, kit_settings):
    payload = make_body()
    post_lookup(payload)
    post_lookup(authorization=None)
    lines = [json.loads(x)
             for x in Path(kit_settings.audit_log_path).read_text().splitlines()]
    assert [(x["lookup_id"], x["outcome"]) for x in lines] == [
        (payload["lookup_id"], "match"), (None, "refused")]
    assert lines[0]["requester_organisation"] == "Neighbouring Council"
    assert lines[0]["basis_type"] == "statutory"


def test_rotated_broker_key_is_fetched(kit_settings, jwks_server, serve, make_body):
    keys = BrokerKeys(kit_settings.jwks_url, min_refresh_s=0)
    url = serve(create_kit_app(kit_settings, keys=keys)).url

    def send(key):
        body = encode_body(make_body())
        token = sign_request(body, key, issuer=ISSUER, audience=AUTHORITY)
        return requests.post(f"{url}/lookup", data=body, timeout=5,
                             headers={"Authorization": f"Bearer {token}"})

    assert send(jwks_server.keys[0]).status_code == 200
    new_key = generate_signing_key("rotated")
    assert send(new_key).status_code == 401  # not published yet
    jwks_server.keys.append(new_key)
    assert send(new_key).status_code == 200
    assert jwks_server.fetches == 3


def test_unknown_kid_flood_does_not_hammer_the_broker(post_lookup, jwks_server):
    assert post_lookup().status_code == 200
    for i in range(20):
        assert post_lookup(key=generate_signing_key(f"bogus-{i}")).status_code == 401
    assert jwks_server.fetches == 1
