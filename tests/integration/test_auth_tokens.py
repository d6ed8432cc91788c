"""Bearer token validation against a provider served on loopback (discovery +
JWKS over real HTTP): each kind of bad token is refused."""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, jsonify
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OctKey, RSAKey

from federator.auth.tokens import InvalidToken, ProviderUnavailable, TokenValidator
from federator.demo.serving import ServedApp, bind

pytestmark = pytest.mark.integration
AUDIENCE = "federator"


class Provider:
    def __init__(self, served: ServedApp) -> None:
        self.served = served
        self.issuer = served.url
        self.published: list[ECKey | RSAKey] = [self.new_key("k1")]
        self.jwks_fetches = 0

    @staticmethod
    def new_key(kid: str) -> ECKey:
        return ECKey.generate_key("P-256", parameters={"kid": kid, "alg": "ES256"},
                                  private=True)

    def token(self, key: ECKey | RSAKey | None = None, alg: str = "ES256", typ: str = "at+jwt",
              **claims: Any) -> str:
        key = key or self.published[0]
        now = int(time.time())
        body = {"iss": self.issuer, "aud": AUDIENCE, "sub": "u1", "iat": now,
                "exp": now + 300, "roles": ["practitioner"], **claims}
        return jwt.encode({"alg": alg, "kid": key.kid, "typ": typ}, body, key)


@pytest.fixture
def provider() -> Iterator[Provider]:
    served = bind(0)
    state = Provider(served)
    app = Flask(__name__)

    @app.get("/.well-known/openid-configuration")
    def discovery() -> Any:
        return jsonify({"issuer": state.issuer, "jwks_uri": f"{state.issuer}/jwks"})

    @app.get("/jwks")
    def jwks() -> Any:
        state.jwks_fetches += 1
        return jsonify(KeySet(state.published).as_dict(private=False))

    served.start(app)
    yield state
    served.stop()


@pytest.fixture
def validator(provider: Provider) -> TokenValidator:
    return TokenValidator(provider.issuer, AUDIENCE, refresh_interval_s=0.0)


def test_a_good_token_gives_the_principal(provider: Provider, validator: TokenValidator
                                          ) -> None:
    principal = validator.principal(provider.token(name="Sam", organisation="Leeds"))
    assert (principal.id, principal.roles, principal.organisation) == (
        "u1", ("practitioner",), "Leeds")


def test_expired_token_is_refused(provider: Provider, validator: TokenValidator) -> None:
    past = int(time.time()) - 3600
    with pytest.raises(InvalidToken):
        validator.principal(provider.token(iat=past - 300, exp=past))


def test_wrong_audience_is_refused(provider: Provider, validator: TokenValidator) -> None:
    with pytest.raises(InvalidToken):
        validator.principal(provider.token(aud="another-service"))


def test_wrong_issuer_is_refused(provider: Provider, validator: TokenValidator) -> None:
    with pytest.raises(InvalidToken):
        validator.principal(provider.token(iss="https://evil.example"))


def test_bad_signature_is_refused(provider: Provider, validator: TokenValidator) -> None:
    good = provider.token()
    forged = provider.token(key=Provider.new_key("k1"))  # same kid, another key
    with pytest.raises(InvalidToken):
        validator.principal(forged)
    head, body, sig = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["roles"] = ["broker-admin"]
    tampered = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidToken):
        validator.principal(f"{head}.{tampered}.{sig}")


def test_alg_none_is_refused(provider: Provider, validator: TokenValidator) -> None:
    def b64(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    now = int(time.time())
    claims = {"iss": provider.issuer, "aud": AUDIENCE, "sub": "u1", "exp": now + 300,
              "roles": ["practitioner"]}
    for header in ({"alg": "none"}, {"alg": "none", "kid": "k1"}, {"alg": "NONE"}):
        with pytest.raises(InvalidToken):
            validator.principal(f"{b64(header)}.{b64(claims)}.")


def test_hmac_signed_with_the_public_key_is_refused(provider: Provider,
                                                    validator: TokenValidator) -> None:
    public = json.dumps(provider.published[0].as_dict(private=False)).encode()
    secret = OctKey.import_key(public, {"kid": "k1"})
    with pytest.raises(InvalidToken):
        validator.principal(provider.token(key=secret, alg="HS256"))  # type: ignore[arg-type]


def test_unknown_kid_refetches_keys_then_accepts_a_rotated_key(
        provider: Provider, validator: TokenValidator) -> None:
    validator.principal(provider.token())
    fetches = provider.jwks_fetches
    rotated = Provider.new_key("k2")
    provider.published.append(rotated)
    assert validator.principal(provider.token(key=rotated)).id == "u1"
    assert provider.jwks_fetches == fetches + 1


def test_unknown_kid_after_refetch_is_refused(provider: Provider,
                                              validator: TokenValidator) -> None:
    validator.principal(provider.token())
    fetches = provider.jwks_fetches
    with pytest.raises(InvalidToken):
        validator.principal(provider.token(key=Provider.new_key("never-published")))
    assert provider.jwks_fetches == fetches + 1


def test_unknown_kids_do_not_hammer_the_provider(provider: Provider) -> None:
    validator = TokenValidator(provider.issuer, AUDIENCE, refresh_interval_s=60.0)
    validator.principal(provider.token())
    for i in range(5):
        with pytest.raises(InvalidToken):
            validator.principal(provider.token(key=Provider.new_key(f"x{i}")))
    assert provider.jwks_fetches == 1


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "e30.e30.", "x" * 20000])
def test_malformed_tokens_are_refused(validator: TokenValidator, token: str) -> None:
    with pytest.raises(InvalidToken):
        validator.principal(token)


def test_unreachable_provider_is_reported_as_such() -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    validator = TokenValidator(url, AUDIENCE)
    key = Provider.new_key("k1")
    now = int(time.time())
    token = jwt.encode({"alg": "ES256", "kid": "k1"},
                       {"iss": url, "aud": AUDIENCE, "sub": "u", "exp": now + 60}, key)
    try:
        with pytest.raises(ProviderUnavailable):
            validator.principal(token)
    finally:
        closed.close()
