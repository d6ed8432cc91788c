"""The app with injected keys, source and replay guard (Flask test client)."""

from __future__ import annotations

import json
import logging

import pytest
from joserfc.jwk import KeySet

from adapters.kit.app import create_kit_app
from adapters.kit.keys import KeysUnavailable
from adapters.kit.record_ref import development_key, record_ref
from adapters.kit.replay import MemoryReplayGuard
from adapters.kit.settings import KitSettings
from adapters.kit.sources import SourceError
from adapters.protocol import (
    WireAnswer,
    encode_body,
    generate_signing_key,
    public_jwks,
    sign_request,
)

KEY = generate_signing_key("unit")


class ListSource:
    def __init__(self, records):
        self._records = records

    def records(self):
        return self._records


class BrokenSource:
    def records(self):
        raise SourceError("row 3: date_of_birth must be an ISO date, not 'Amara'")


def settings(tmp_path, **kw):
    values = {"authority_id": "test-cs", "name": "Test Council",
              "jwks_url": "https://unused.invalid/jwks", "broker_issuer": "broker",
              "record_ref_key": "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk",
              "csv_path": "unused.csv",
              "audit_log_path": str(tmp_path / "audit.jsonl")}
    values.update(kw)
    return KitSettings(**values)


def keyset(kid=None):
    return KeySet.import_key_set(public_jwks([KEY]))


def wire(**kw):
    body = {"lookup_id": "L-1",
            "child": {"given_name": "Amara", "family_name": "Okafor",
                      "date_of_birth": "2015-03-12", "postcodes": ["LS6 2AB"]},
            "basis": {"type": "statutory", "power": "children-act-1989-s47", "reference": "R"},
            "purpose": "test", "include_past": False,
            "requester": {"id": "u1", "name": "Pat Asker", "role": "Social worker",
                          "organisation": "Other Council"}}
    body.update(kw)
    return body


def post(client, payload, audience="test-cs"):
    body = encode_body(payload)
    token = sign_request(body, KEY, issuer="broker", audience=audience)
    return client.post("/lookup", data=body, content_type="application/json",
                       headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def records(make_record, make_involvement):
    return [make_record(involvements=[make_involvement()])]


@pytest.fixture
def make_client(tmp_path, records):
    def make(source=None, keys=keyset, **kw):
        app = create_kit_app(settings(tmp_path, **kw), source=source or ListSource(records),
                             keys=keys, replay=MemoryReplayGuard(), sleep=sleeps.append)
        return app.test_client()
    sleeps: list[float] = []
    make.sleeps = sleeps
    return make


def test_health(make_client):
    r = make_client().get("/health")
    assert r.status_code == 200
    assert r.json == {"status": "ok", "protocol": "federator-lookup/1", "authority": "test-cs",
                      "witness": "none"}


@pytest.mark.parametrize(("method", "path", "status"),
                         [("get", "/nowhere", 404), ("get", "/lookup", 405),
                          ("delete", "/health", 405)])
def test_errors_are_json(make_client, method, path, status):
    r = getattr(make_client(), method)(path)
    assert r.status_code == status
    assert r.is_json and "error" in r.json


def test_unexpected_error_is_json_500_and_logs_no_personal_data(make_client, caplog):
    class Exploding:
        def records(self):
            raise RuntimeError("Amara Okafor 2015-03-12")
    with caplog.at_level(logging.INFO, logger="adapters.kit"):
        r = post(make_client(source=Exploding()), wire())
    assert r.status_code == 500
    assert r.json == {"error": "internal server error"}
    assert "Amara" not in caplog.text and "Okafor" not in caplog.text


def test_source_error_is_503(make_client):
    r = post(make_client(source=BrokenSource()), wire())
    assert r.status_code == 503
    assert "Amara" not in r.get_data(as_text=True)


def test_keys_unavailable_is_503(make_client):
    def no_keys(kid):
        raise KeysUnavailable("down")
    r = post(make_client(keys=no_keys), wire())
    assert r.status_code == 503


def test_match_answer_and_logs_only_allowed_fields(make_client, caplog):
    with caplog.at_level(logging.INFO, logger="adapters.kit"):
        r = post(make_client(), wire())
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == "no-store"
    assert r.json["status"] == "match"
    assert r.json["lookup_id"] == "L-1"
    assert [p["name"] for p in r.json["professionals"]] == ["Sam Patel"]
    assert "L-1" in caplog.text and "Other Council" in caplog.text and "statutory" in caplog.text
    for personal in ("Amara", "Okafor", "2015-03-12", "LS6", "Sam Patel", "Pat Asker"):
        assert personal not in caplog.text


def test_audit_log_lines(make_client, tmp_path):
    client = make_client()
    post(client, wire())
    post(client, wire(lookup_id="L-2", child={"given_name": "No", "family_name": "Body",
                                              "date_of_birth": "2000-01-01"}))
    client.post("/lookup", data=b"{}", content_type="application/json")
    lines = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [(x["lookup_id"], x["outcome"]) for x in lines] == [
        ("L-1", "match"), ("L-2", "no_match"), (None, "refused")]
    first = lines[0]
    assert set(first) == {"at", "lookup_id", "requester_id", "requester_organisation",
                          "basis_type", "outcome"}
    assert (first["requester_id"], first["requester_organisation"], first["basis_type"]) == (
        "u1", "Other Council", "statutory")
    assert "Amara" not in (tmp_path / "audit.jsonl").read_text()


def test_no_audit_file_when_not_configured(make_client, tmp_path):
    post(make_client(audit_log_path=None), wire())
    assert not (tmp_path / "audit.jsonl").exists()


def test_simulated_delay(make_client):
    make = make_client
    r = post(make(simulate_delay_ms=250), wire())
    assert r.status_code == 200
    assert make.sleeps == [0.25]


def test_no_delay_by_default(make_client):
    post(make_client(), wire())
    assert make_client.sleeps == []


def test_validation_error_names_fields(make_client):
    payload = wire()
    del payload["purpose"]
    payload["requester"] = {"name": "x"}
    r = post(make_client(), payload)
    assert r.status_code == 400
    assert "purpose" in r.json["error"] and "requester.id" in r.json["error"]
    assert set(r.json["fields"]) == {"purpose", "requester"}


def test_json_array_body_is_400(make_client):
    r = post(make_client(), [1, 2])  # type: ignore[arg-type]
    assert r.status_code == 400


def test_possible_match_gives_notice_not_professionals(make_client):
    child = {"given_name": "Amara", "family_name": "Okafor", "date_of_birth": "2011-01-01",
             "postcodes": ["LS6 2ZZ"]}  # wrong date of birth, same postcode sector only
    r = post(make_client(), wire(child=child))
    assert r.json["status"] == "no_match"
    assert r.json["professionals"] == []
    assert "Test Council" in r.json["notice"]
    assert r.json["matched_on"] == ["given_name", "family_name", "postcode"]
    assert r.json["ask_for"] == ["nhs_number", "date_of_birth"]
    assert "record_ref" not in r.json
    assert WireAnswer().load(r.json)["ask_for"] == ["nhs_number", "date_of_birth"]


def test_a_match_carries_a_stable_opaque_record_ref(make_client, records):
    key = "k" * 40
    client = make_client(record_ref_key=key)
    first, again = (post(client, wire()).json for _ in range(2))
    ref = first["record_ref"]
    assert ref == again["record_ref"] == record_ref(key.encode(), records[0].child_ref)
    assert records[0].child_ref not in ref and ref != records[0].child_ref
    assert len(ref) == 43 and WireAnswer().load(first)["record_ref"] == ref
    assert first["matched_on"] == ["given_name", "family_name", "date_of_birth", "postcode"]
    assert "ask_for" not in first
    other = post(make_client(record_ref_key="o" * 40), wire()).json["record_ref"]
    assert other != ref  # keyed: another authority's key gives another reference
    by_nhs = post(client, wire(child={"nhs_number": records[0].nhs_number})).json
    assert by_nhs["record_ref"] == ref and by_nhs["matched_on"] == ["nhs_number"]


def test_without_a_key_the_kit_warns_and_derives_one(make_client, caplog, records):
    with caplog.at_level(logging.WARNING, logger="adapters.kit"):
        # only with the broker on loopback (tests, the demo): elsewhere it is required
        client = make_client(record_ref_key=None, jwks_url="http://127.0.0.1:9/jwks")
    assert "record_ref_key is not set" in caplog.text
    ref = post(client, wire()).json["record_ref"]
    assert ref == record_ref(development_key("test-cs"), records[0].child_ref)


def test_a_declined_answer_carries_no_match_details(make_client):
    r = post(make_client(), wire(basis={"type": "curiosity"}))
    assert r.json["status"] == "declined"
    assert "record_ref" not in r.json and "matched_on" not in r.json


def test_issuer_is_checked(make_client):
    r = post(make_client(broker_issuer="the-real-broker"), wire())
    assert r.status_code == 401
    assert r.json == {"error": "wrong issuer"}
