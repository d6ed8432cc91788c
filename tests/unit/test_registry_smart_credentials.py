"""A fhir-r4 endpoint's SMART Backend Services credentials as the registry API
takes them (EndpointSchema + safety_errors): a private key instead of a secret."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from marshmallow import ValidationError

from adapters.smart_auth import generate_private_key
from federator.registry.schemas import EndpointSchema, safety_errors
from federator.registry.urlguard import UrlGuard, UrlPolicy


def public(host: str, port: int) -> Sequence[str]:
    return ["93.184.216.34"]


GUARD = UrlGuard(UrlPolicy(), public)


def endpoint(**credentials: str) -> dict[str, Any]:
    return EndpointSchema().load({
        "id": "kirklees-health", "name": "Kirklees Community Health", "code": "RXX",
        "coverage": ["national"], "protocol": "fhir-r4",
        "url": "https://fhir.kirklees.example/R4", "credentials": credentials})


def pem(curve: ec.EllipticCurve) -> str:
    return ec.generate_private_key(curve).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()


def test_smart_credentials_with_a_jwk_key_are_accepted() -> None:
    data = endpoint(auth="smart_backend", client_id="federator",
                    private_key=generate_private_key(),
                    token_url="https://fhir.kirklees.example/token")
    assert safety_errors(data, GUARD) == {}


def test_a_pem_with_line_breaks_is_refused_by_the_api_naming_the_field() -> None:
    """Credential values are one line (no header injection through a token URL); the
    API takes the key as a JWK. A PEM still works from the seed file."""
    with pytest.raises(ValidationError) as e:
        endpoint(client_id="federator", private_key=pem(ec.SECP384R1()))
    assert set(e.value.messages["credentials"]["private_key"]) == {"value"}
    unchecked = {"protocol": "fhir-r4", "url": "https://fhir.kirklees.example/R4",
                 "credentials": {"client_id": "federator", "private_key": pem(ec.SECP384R1())}}
    assert safety_errors(unchecked, GUARD) == {}  # what the seed path stores


def test_smart_credentials_with_a_jwk_and_no_token_url_are_accepted() -> None:
    data = endpoint(client_id="federator", private_key=generate_private_key("RS384"))
    assert safety_errors(data, GUARD) == {}


def test_smart_needs_client_id_and_private_key_not_a_secret() -> None:
    errors = safety_errors(endpoint(auth="smart_backend"), GUARD)
    assert errors == {"credentials": {"client_id": ["Missing data for required field."],
                                      "private_key": ["Missing data for required field."]}}


def test_a_key_smart_cannot_use_is_named_without_echoing_it() -> None:
    key = pem(ec.SECP256R1())
    errors = safety_errors({"protocol": "fhir-r4", "url": "https://fhir.kirklees.example/R4",
                            "credentials": {"client_id": "federator", "private_key": key}}, GUARD)
    assert errors == {"credentials": {"private_key": [
        "an EC private_key must use the P-384 curve (ES384)"]}}
    assert key not in str(errors)


def test_unknown_auth_is_named() -> None:
    errors = safety_errors(endpoint(auth="mtls", client_id="x", client_secret="y",
                                    token_url="https://fhir.kirklees.example/token"), GUARD)
    assert errors == {"credentials": {"auth": ["auth must be one of: client_secret, "
                                               "smart_backend"]}}


def test_client_secret_endpoints_still_need_their_secret() -> None:
    errors = safety_errors(endpoint(client_id="x", token_url="https://t.example/token"), GUARD)
    assert errors == {"credentials": {"client_secret": ["Missing data for required field."]}}


@pytest.mark.parametrize("url", ["http://169.254.169.254/token"])
def test_smart_token_url_is_still_guarded(url: str) -> None:
    errors = safety_errors(endpoint(client_id="x", private_key=generate_private_key(),
                                    token_url=url), UrlGuard(UrlPolicy(), lambda h, p: [h]))
    assert "token_url" in errors["credentials"]


def test_a_staged_next_key_is_validated_naming_each_field() -> None:
    """The API (and the form) take ``next_private_key``/``next_from`` only when the
    key signs and the time is whole seconds; the message never repeats the key."""
    key = pem(ec.SECP256R1()).replace("\n", "|")  # one line, as the API takes text
    weak = json.dumps({**json.loads(generate_private_key()), "crv": "P-256"})
    data = endpoint(client_id="federator", private_key=generate_private_key(),
                    next_private_key=weak, next_from="tomorrow")
    errors = safety_errors(data, GUARD)
    assert errors == {"credentials": {
        "next_private_key": ["an EC next_private_key must use the P-384 curve (ES384)"],
        "next_from": ["next_from must be a time in whole seconds since 1970-01-01 UTC "
                      "(for example 1767225600)"]}}
    assert weak not in json.dumps(errors)
    unreadable = endpoint(client_id="federator", private_key=generate_private_key(),
                          next_private_key=key, next_from="1767225600")
    assert safety_errors(unreadable, GUARD) == {"credentials": {"next_private_key": [
        "next_private_key is not a readable PEM or JWK private key"]}}


def test_a_staged_next_key_that_signs_is_accepted() -> None:
    data = endpoint(client_id="federator", private_key=generate_private_key(),
                    next_private_key=generate_private_key("RS384"), next_from="1767225600")
    assert safety_errors(data, GUARD) == {}


def test_a_next_key_without_smart_is_refused() -> None:
    errors = safety_errors(endpoint(client_id="x", client_secret="y",
                                    token_url="https://fhir.kirklees.example/token",
                                    next_private_key=generate_private_key(),
                                    next_from="1767225600"), GUARD)
    assert list(errors["credentials"]) == ["next_private_key"]
