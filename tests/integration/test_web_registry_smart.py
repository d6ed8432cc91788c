"""SMART Backend Services on the registry pages (Flask's test client on the real
app and database, a real FHIR server on loopback): saving the change form keeps
a stored private key, "Create a key pair" stores a key whose public JWKS (shown
on the endpoint's page) lets the broker sign in to a FHIR server that registers
it, and no page ever shows the private key."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from support.fhir_server import CLIENT_ID, CLIENT_SECRET, FhirServer, deadline, payload, serve
from support.web_client import HTML, app_on_fresh_database, pass_check, signed_in, token

from adapters.base import AdapterError, Target
from adapters.fhir_r4 import FhirR4Client

pytestmark = pytest.mark.integration

ENDPOINT = "leeds-cs"
PAGES = ("/registry/endpoints", f"/registry/endpoints/{ENDPOINT}",
         f"/registry/endpoints/{ENDPOINT}/change", f"/registry/endpoints/{ENDPOINT}/key-pair")


fhir_server = pytest.fixture(serve, name="fhir_server")
app = pytest.fixture(app_on_fresh_database, name="app")  # the real app on a fresh database


def fhir_form(server: FhirServer, **extra: Any) -> dict[str, Any]:
    return {"name": "Leeds Community Health", "code": "RXX", "coverage": "national",
            "protocol": "fhir-r4", "url": server.base, "timeout_ms": "3000",
            "contact": "fhir@leeds.example", **extra}


def post(client: FlaskClient, path: str, form_path: str | None = None, **data: Any) -> Any:
    return client.post(path, headers=HTML,
                       data={"csrf_token": token(client, form_path or path), **data})


def register(client: FlaskClient, server: FhirServer, **extra: Any) -> Any:
    return post(client, "/registry/endpoints/new", **fhir_form(server, **extra))


def smart_registered(app: Flask, server: FhirServer) -> FlaskClient:
    """The authority's admin, signed in, having registered its endpoint with SMART
    Backend Services (the broker makes the key)."""
    admin = signed_in(app, "authority-admin", ENDPOINT)
    assert register(admin, server, auth="smart_backend", client_id=CLIENT_ID).status_code == 303
    return admin


def change(client: FlaskClient, server: FhirServer, **extra: Any) -> Any:
    return post(client, f"/registry/endpoints/{ENDPOINT}/change", **fhir_form(server, **extra))


def credentials(app: Flask) -> dict[str, str]:
    return app.extensions["federator"].registry.credentials(ENDPOINT)


def status_of(app: Flask) -> str:
    shown = app.extensions["federator"].registry.describe_one(ENDPOINT)
    assert shown is not None
    return str(shown["status"])


def approve(app: Flask) -> None:
    pass_check(app, ENDPOINT)
    broker = signed_in(app, "broker-admin")
    path = f"/registry/endpoints/{ENDPOINT}/approve"
    assert post(broker, path, f"/registry/endpoints/{ENDPOINT}").status_code == 303
    assert status_of(app) == "active"


def shown_jwks(client: FlaskClient) -> dict[str, Any]:
    page = client.get(f"/registry/endpoints/{ENDPOINT}", headers=HTML).get_data(as_text=True)
    found = re.search(r'<textarea[^>]*id="jwks"[^>]*>(.*?)</textarea>', page, re.S)
    assert found, "the endpoint's page shows no JWKS"
    return dict(json.loads(html.unescape(found.group(1))))


def private_d(app: Flask) -> str:
    return str(json.loads(credentials(app)["private_key"])["d"])


def assert_no_page_shows(app: Flask, *secrets: str) -> None:
    for client in (signed_in(app, "authority-admin", ENDPOINT), signed_in(app, "broker-admin")):
        for path in PAGES:
            text = client.get(path, headers=HTML).get_data(as_text=True)
            for secret in secrets:
                assert secret not in text, path


def lookup_with_stored_key(app: Flask, server: FhirServer) -> str:
    client = FhirR4Client(user_agent="federator-test")
    try:
        target = Target(id=ENDPOINT, url=server.base, timeout_ms=3000,
                        credentials=credentials(app))
        return str(client.lookup(target, payload(), deadline=deadline())["status"])
    finally:
        client.close()


def test_smart_registration_then_saving_other_fields_keeps_the_key(
        app: Flask, fhir_server: FhirServer) -> None:
    admin = signed_in(app, "authority-admin", ENDPOINT)
    form = admin.get("/registry/endpoints/new", headers=HTML).get_data(as_text=True)
    assert "SMART Backend Services" in form and 'name="auth"' in form
    # SMART needs a client id; the error is on its field and nothing is stored
    missing = register(admin, fhir_server, auth="smart_backend")
    assert missing.status_code == 422 and 'href="#client_id"' in missing.get_data(as_text=True)
    assert app.extensions["federator"].registry.get(ENDPOINT) is None
    assert register(admin, fhir_server, auth="smart_backend",
                    client_id=CLIENT_ID).status_code == 303
    stored = credentials(app)
    assert stored["auth"] == "smart_backend" and stored["client_id"] == CLIENT_ID
    assert "client_secret" not in stored and private_d(app)
    approve(app)

    # another field saved: the key (and everything else stored) kept, still active
    form = admin.get(f"/registry/endpoints/{ENDPOINT}/change", headers=HTML)
    assert re.search(r'value="smart_backend"\s+checked|checked[^>]*value="smart_backend"',
                     form.get_data(as_text=True))
    assert change(admin, fhir_server, auth="smart_backend",
                  contact="new@leeds.example").status_code == 303
    assert credentials(app) == stored and status_of(app) == "active"
    # one credential typed: only that one replaced; the key kept; approval again
    assert change(admin, fhir_server, auth="smart_backend",
                  scope="system/Patient.rs").status_code == 303
    assert credentials(app) == {**stored, "scope": "system/Patient.rs"}
    assert status_of(app) == "pending"
    # a client secret chosen: the key stays stored (not used) until replaced
    assert change(admin, fhir_server, auth="client_secret", client_secret=CLIENT_SECRET,
                  token_url=f"{fhir_server.url}/token").status_code == 303
    now = credentials(app)
    assert now["auth"] == "client_secret" and now["private_key"] == stored["private_key"]
    assert now["client_secret"] == CLIENT_SECRET
    assert lookup_with_stored_key(app, fhir_server) == "match"  # signs in with the secret
    assert fhir_server.assertions == []
    assert_no_page_shows(app, private_d(app), CLIENT_SECRET)


def test_create_a_key_pair_shows_a_jwks_that_verifies_the_stored_key(
        app: Flask, fhir_server: FhirServer) -> None:
    admin = signed_in(app, "authority-admin", ENDPOINT)
    assert register(admin, fhir_server, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                    token_url=f"{fhir_server.url}/token").status_code == 303
    approve(app)
    page = admin.get(f"/registry/endpoints/{ENDPOINT}", headers=HTML).get_data(as_text=True)
    assert "Create a key pair" in page and 'id="jwks"' not in page
    confirm = admin.get(f"/registry/endpoints/{ENDPOINT}/key-pair", headers=HTML)
    assert confirm.status_code == 200
    assert "client secret stored now is deleted" in confirm.get_data(as_text=True)

    made = post(admin, f"/registry/endpoints/{ENDPOINT}/key-pair", alg="ES384")
    assert made.status_code == 303 and made.headers["Location"].endswith("#smart-key")
    stored = credentials(app)
    assert stored["auth"] == "smart_backend" and "client_secret" not in stored
    assert stored["client_id"] == CLIENT_ID and status_of(app) == "pending"
    assert "A new key pair is made" in admin.get(
        f"/registry/endpoints/{ENDPOINT}", headers=HTML).get_data(as_text=True)
    jwks = shown_jwks(admin)
    (key,) = jwks["keys"]
    assert key["kty"] == "EC" and key["alg"] == "ES384" and "d" not in key
    assert jwks == shown_jwks(signed_in(app, "broker-admin"))  # the broker's admins see it too

    # the FHIR server registers the JWKS shown: the stored key signs the broker in
    fhir_server.smart_jwks = jwks
    assert lookup_with_stored_key(app, fhir_server) == "match"
    assert fhir_server.refusals == [] and len(fhir_server.assertions) == 1
    old_d = private_d(app)
    assert_no_page_shows(app, old_d)

    # a new key pair (RSA) at once replaces it: the old JWKS no longer verifies the broker
    warned = admin.get(f"/registry/endpoints/{ENDPOINT}/key-pair", headers=HTML)
    assert "When the new key signs" in warned.get_data(as_text=True)
    assert post(admin, f"/registry/endpoints/{ENDPOINT}/key-pair",
                alg="RS384", when="now").status_code == 303
    rsa = shown_jwks(admin)
    assert rsa["keys"][0]["kty"] == "RSA" and rsa["keys"][0]["kid"] != key["kid"]
    with pytest.raises(AdapterError, match="refused the SMART client assertion"):
        lookup_with_stored_key(app, fhir_server)
    assert fhir_server.refusals == ["signature"]
    fhir_server.smart_jwks = rsa
    assert lookup_with_stored_key(app, fhir_server) == "match"
    assert_no_page_shows(app, old_d, private_d(app))
    events = app.extensions["federator"].trail.records(event="registry.updated", limit=10)
    assert len(events) == 2 and old_d not in json.dumps(events)


def test_a_new_key_with_overlap_is_published_first_and_used_when_the_authority_says(
        app: Flask, fhir_server: FhirServer) -> None:
    admin = smart_registered(app, fhir_server)
    approve(app)
    first = shown_jwks(admin)
    fhir_server.smart_jwks = first
    fhir_server.smart_config = True  # no token URL given: the server's is discovered
    path = f"/registry/endpoints/{ENDPOINT}/key-pair"
    undecided = post(admin, path, alg="ES384", when="")
    assert undecided.status_code == 422 and 'href="#when"' in undecided.get_data(as_text=True)
    assert post(admin, path, alg="ES384", when="overlap").status_code == 303
    page = admin.get(f"/registry/endpoints/{ENDPOINT}", headers=HTML).get_data(as_text=True)
    assert "A new key is published next to the key in use" in page
    assert "Use the new key now" in page
    both = shown_jwks(admin)
    assert len(both["keys"]) == 2 and both["keys"][1] == first["keys"][0]
    assert status_of(app) == "active"  # the key in use still signs
    assert lookup_with_stored_key(app, fhir_server) == "match"
    staged_d = json.loads(credentials(app)["next_private_key"])["d"]
    assert_no_page_shows(app, private_d(app), staged_d)

    # the authority registers both keys, then switches: the new key signs, alone
    fhir_server.smart_jwks = both
    retire = f"/registry/endpoints/{ENDPOINT}/key-pair/retire"
    assert post(admin, retire, f"/registry/endpoints/{ENDPOINT}").status_code == 303
    assert shown_jwks(admin) == {"keys": both["keys"][:1]} and status_of(app) == "active"
    assert private_d(app) == staged_d
    fhir_server.smart_jwks = first
    with pytest.raises(AdapterError):
        lookup_with_stored_key(app, fhir_server)
    nothing = post(admin, retire, f"/registry/endpoints/{ENDPOINT}")
    assert nothing.status_code == 409 and "No new key is waiting" in nothing.get_data(as_text=True)
    other = signed_in(app, "authority-admin", "bradford-cs")
    assert post(other, retire, "/registry/endpoints").status_code == 404


def test_the_key_pair_page_is_the_authoritys_own_and_fhir_only(
        app: Flask, fhir_server: FhirServer) -> None:
    admin = smart_registered(app, fhir_server)
    before = credentials(app)
    path = f"/registry/endpoints/{ENDPOINT}/key-pair"
    bad = post(admin, path, alg="HS256")
    assert bad.status_code == 422
    assert "govuk-error-summary" in bad.get_data(as_text=True)
    assert 'href="#alg"' in bad.get_data(as_text=True)
    forged = admin.post(path, headers=HTML, data={"alg": "ES384"})
    assert forged.status_code == 400
    assert signed_in(app, "broker-admin").get(path, headers=HTML).status_code == 403
    other = signed_in(app, "authority-admin", "bradford-cs")
    assert other.get(path, headers=HTML).status_code == 404
    assert other.post(path, headers=HTML, data={"csrf_token": token(other, "/registry/endpoints"),
                                                "alg": "ES384"}).status_code == 404
    assert credentials(app) == before
    # a federator-lookup/1 endpoint has no key pair
    lookup = {"name": "Bradford", "code": "E08000032", "coverage": "E08000032",
              "protocol": "federator-lookup/1", "url": "http://127.0.0.1:9/",
              "timeout_ms": "3000"}
    assert post(other, "/registry/endpoints/new", **lookup).status_code == 303
    assert other.get("/registry/endpoints/bradford-cs/key-pair",
                     headers=HTML).status_code == 404
    page = other.get("/registry/endpoints/bradford-cs", headers=HTML).get_data(as_text=True)
    assert "key pair" not in page


def test_a_form_without_the_sign_in_choice_keeps_the_stored_one(
        app: Flask, fhir_server: FhirServer) -> None:
    admin = smart_registered(app, fhir_server)
    stored = credentials(app)
    assert change(admin, fhir_server, contact="other@leeds.example").status_code == 303
    assert credentials(app) == stored
    assert change(admin, fhir_server, client_id="renamed").status_code == 303
    assert credentials(app) == {**stored, "client_id": "renamed"}
