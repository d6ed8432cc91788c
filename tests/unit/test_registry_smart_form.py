"""How the registry pages merge a fhir-r4 endpoint's typed credentials onto the
stored ones (no stored credential dropped by a saved form), and the plain key
functions behind ``registry smart-key`` and "Create a key pair"."""

from __future__ import annotations

import json

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from adapters.smart_auth import (
    build_assertion,
    credentials_jwks,
    generate_private_key,
    key_update,
    load_private_key,
)
from federator.web.registry_smart import (
    merge_credentials,
    method_of,
    with_form_credentials,
)

KEY = generate_private_key()
SMART = {"auth": "smart_backend", "client_id": "federator", "private_key": KEY}
SECRET = {"token_url": "https://fhir.example/token", "client_id": "federator",
          "client_secret": "s3cret"}


def no_key() -> str:
    raise AssertionError("no key should be made")


def test_a_blank_form_keeps_every_stored_credential() -> None:
    assert merge_credentials(SMART, {}, "smart_backend", make_key=no_key) == SMART
    assert merge_credentials(SECRET, {}, "client_secret", make_key=no_key) == SECRET
    assert merge_credentials(SECRET, {}, None, make_key=no_key) == SECRET


def test_a_typed_field_replaces_only_itself() -> None:
    merged = merge_credentials(SMART, {"client_id": "new", "scope": "system/Patient.rs"},
                               "smart_backend", make_key=no_key)
    assert merged == {**SMART, "client_id": "new", "scope": "system/Patient.rs"}


def test_choosing_a_client_secret_keeps_the_key_and_smart_keeps_the_secret() -> None:
    merged = merge_credentials(SMART, {"client_secret": "s"}, "client_secret", make_key=no_key)
    assert merged["private_key"] == KEY and merged["auth"] == "client_secret"
    assert method_of(merged) == "client_secret"
    back = merge_credentials(merged, {}, "smart_backend", make_key=no_key)
    assert back["auth"] == "smart_backend" and back["client_secret"] == "s"


def test_smart_without_a_stored_key_gets_a_new_one() -> None:
    merged = merge_credentials(SECRET, {}, "smart_backend", make_key=lambda: "NEW")
    assert merged == {**SECRET, "auth": "smart_backend", "private_key": "NEW"}


def test_an_unknown_auth_is_left_for_the_registry_to_refuse() -> None:
    assert merge_credentials(SECRET, {}, "basic", make_key=no_key) == SECRET


def test_an_unchanged_form_sends_no_credentials() -> None:
    update = {"contact": "x@leeds.example", "credentials": None}
    out = with_form_credentials(update, "fhir-r4", SMART, "smart_backend", make_key=no_key)
    assert out == {"contact": "x@leeds.example"}
    legacy = {"token_url": "t", "client_id": "c", "client_secret": "s"}  # no auth stored
    assert "credentials" not in with_form_credentials({}, "fhir-r4", legacy, "client_secret",
                                                      make_key=no_key)


def test_a_changed_credential_sends_the_merged_set() -> None:
    out = with_form_credentials({"credentials": {"scope": "s"}}, "fhir-r4", SMART,
                                "smart_backend", make_key=no_key)
    assert out == {"credentials": {**SMART, "scope": "s"}}


def test_other_protocols_and_a_new_protocol_take_what_was_typed() -> None:
    typed = {"protocol": "federator-lookup/1", "credentials": {"client_id": "x"}}
    assert with_form_credentials(typed, "fhir-r4", SMART, "smart_backend") == typed
    moved = with_form_credentials({"protocol": "fhir-r4", "credentials": {"client_id": "c"}},
                                  "federator-lookup/1", {"other": "x"}, "client_secret",
                                  make_key=no_key)
    assert moved["credentials"] == {"client_id": "c"}
    registered = with_form_credentials({"protocol": "fhir-r4", "credentials": None}, None, {},
                                       "client_secret", make_key=no_key)
    assert "credentials" not in registered


def test_key_update_keeps_a_stored_key_unless_a_new_one_is_asked_for() -> None:
    assert key_update(SMART) is None
    given = key_update(SMART, client_id="other")
    assert given == {**SMART, "client_id": "other"}
    new = key_update({**SECRET, "kid": "old"}, new_key=True, alg="ES384")
    assert new is not None and new["private_key"] != KEY
    assert "client_secret" not in new and "kid" not in new and new["auth"] == "smart_backend"


@pytest.mark.parametrize("alg", ["ES384", "RS384"])
def test_the_jwks_verifies_what_the_stored_key_signs_and_holds_no_private_part(alg: str) -> None:
    creds = key_update({}, alg=alg, client_id="federator")
    assert creds is not None
    jwks = credentials_jwks(creds, 0)
    assert jwks is not None
    private = json.loads(creds["private_key"])
    for part in ("d", "p", "q", "dp", "dq", "qi"):
        assert all(part not in k for k in jwks["keys"])
        if part in private:
            assert private[part] not in json.dumps(jwks)
    assertion = build_assertion(load_private_key(creds["private_key"]), client_id="federator",
                                token_url="https://fhir.example/token", now=1_700_000_000)
    token = jwt.decode(assertion, KeySet.import_key_set(jwks), algorithms=[alg])
    assert token.header["kid"] == jwks["keys"][0]["kid"] and token.claims["iss"] == "federator"
    assert credentials_jwks(SECRET, 0) is None
