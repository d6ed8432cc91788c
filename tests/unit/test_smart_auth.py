"""The SMART Backend Services client assertion (adapters.smart_auth), checked by
decoding it with joserfc as an authority's server would."""

from __future__ import annotations

import json
import traceback

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc import jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import ECKey, KeySet

from adapters.smart_auth import (
    ASSERTION_TYPE,
    DEFAULT_SCOPE,
    SmartKeyError,
    auth_method,
    build_assertion,
    generate_private_key,
    key_id,
    load_private_key,
    public_jwks,
    token_form,
)

NOW = 1_800_000_000
TOKEN_URL = "https://fhir.kirklees.example/token"


def decode(assertion: str, private_text: str) -> jwt.Token:
    key = load_private_key(private_text)
    keys = KeySet.import_key_set(public_jwks((key, None)))
    return jwt.decode(assertion, keys, algorithms=["ES384", "RS384"])


@pytest.mark.parametrize("alg", ["ES384", "RS384"])
def test_assertion_claims_and_header_follow_smart(alg: str) -> None:
    private = generate_private_key(alg)
    key = load_private_key(private)
    token = decode(build_assertion(key, client_id="federator", token_url=TOKEN_URL, now=NOW),
                   private)
    assert token.header == {"alg": alg, "kid": json.loads(private)["kid"], "typ": "JWT"}
    claims = token.claims
    assert claims["iss"] == claims["sub"] == "federator"
    assert claims["aud"] == TOKEN_URL
    assert claims["iat"] == NOW and claims["exp"] == NOW + 300
    assert isinstance(claims["jti"], str) and len(claims["jti"]) >= 24


def test_every_assertion_has_a_new_jti() -> None:
    key = load_private_key(generate_private_key())
    jtis = {jwt.decode(build_assertion(key, client_id="c", token_url=TOKEN_URL, now=NOW),
                       key, algorithms=["ES384"]).claims["jti"] for _ in range(20)}
    assert len(jtis) == 20


def test_lifetime_is_at_most_five_minutes() -> None:
    key = load_private_key(generate_private_key())
    with pytest.raises(ValueError, match="lifetime_s"):
        build_assertion(key, client_id="c", token_url=TOKEN_URL, now=NOW, lifetime_s=301)
    short = build_assertion(key, client_id="c", token_url=TOKEN_URL, now=NOW, lifetime_s=60)
    assert jwt.decode(short, key, algorithms=["ES384"]).claims["exp"] == NOW + 60


def test_another_key_does_not_verify_it() -> None:
    mine, theirs = generate_private_key(), generate_private_key()
    assertion = build_assertion(load_private_key(mine), client_id="c", token_url=TOKEN_URL,
                                now=NOW)
    other = load_private_key(theirs)
    with pytest.raises(BadSignatureError):
        jwt.decode(assertion, ECKey.import_key(other.as_dict(private=False)),
                   algorithms=["ES384"])


def test_configured_kid_wins() -> None:
    key = load_private_key(generate_private_key())
    assert key_id(key, {"kid": "broker-2026"}) == "broker-2026"
    assertion = build_assertion(key, client_id="c", token_url=TOKEN_URL, now=NOW,
                                kid="broker-2026")
    assert jwt.decode(assertion, key, algorithms=["ES384"]).header["kid"] == "broker-2026"


def test_pem_keys_are_read_and_get_a_thumbprint_kid() -> None:
    pem = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()
    key = load_private_key(pem)
    assert key_id(key) == key.thumbprint()


@pytest.mark.parametrize("text, message", [
    ("not a key", "not a readable PEM or JWK"),
    ('{"kty": "oct", "k": "abc"}', r"an EC \(P-384\) or RSA private key"),
    ("P-256", "P-384 curve"),
    ("RSA-1024", "at least 2048 bits"),
    ("PUBLIC", "only a public key"),
])
def test_unusable_keys_are_refused_without_echoing_them(text: str, message: str) -> None:
    if text == "P-256":
        text = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()).decode()
    elif text == "RSA-1024":
        weak = rsa.generate_private_key(65537, 1024)  # noqa: S505 - weak on purpose
        text = weak.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()).decode()
    elif text == "PUBLIC":
        text = json.dumps(load_private_key(generate_private_key()).as_dict(private=False))
    with pytest.raises(SmartKeyError, match=message) as e:
        load_private_key(text)
    assert text not in str(e.value)


def test_public_jwks_holds_no_private_part() -> None:
    key = load_private_key(generate_private_key("RS384"))
    jwks = public_jwks((key, "k1"))
    (public,) = jwks["keys"]
    assert public["kid"] == "k1" and public["alg"] == "RS384" and public["kty"] == "RSA"
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(public)


def test_auth_method() -> None:
    assert auth_method({"client_secret": "x"}) == "client_secret"
    assert auth_method({"private_key": "x"}) == "smart_backend"
    assert auth_method({"auth": "smart_backend"}) == "smart_backend"
    with pytest.raises(ValueError, match="auth must be one of"):
        auth_method({"auth": "basic"})


def test_token_form() -> None:
    form = token_form("A.B.C", None)
    assert form == {"grant_type": "client_credentials", "scope": DEFAULT_SCOPE,
                    "client_assertion_type": ASSERTION_TYPE, "client_assertion": "A.B.C"}
    assert "system/Patient.rs" in DEFAULT_SCOPE and "system/CareTeam.rs" in DEFAULT_SCOPE
    assert token_form("A.B.C", "system/Patient.rs")["scope"] == "system/Patient.rs"


@pytest.mark.parametrize("damage", ["cut", "bad_d", "bad_x"])
def test_a_damaged_key_leaves_no_key_in_the_traceback(damage: str) -> None:
    """What a log of the failure would print (the chained causes too)."""
    text = generate_private_key()
    data = json.loads(text)
    secret = data["d"]
    damaged = {"cut": text[:-3],
               "bad_d": json.dumps({**data, "d": secret[:-4] + "AAAA"}),
               "bad_x": json.dumps({**data, "x": data["x"][:-4] + "AAAA"})}[damage]
    with pytest.raises(SmartKeyError) as e:
        load_private_key(damaged)
    printed = "".join(traceback.format_exception(e.value))
    assert secret[:16] not in printed and data["x"][:16] not in printed
