"""A validated bearer token is remembered briefly (federator.auth.tokens.CACHE_S),
never past its ``exp``, in a bounded cache; a token not seen before is always checked."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, jsonify
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from federator.auth import tokens
from federator.auth.tokens import InvalidToken, TokenValidator
from federator.demo.serving import bind

pytestmark = pytest.mark.integration
AUDIENCE = "federator"
KEY = ECKey.generate_key("P-256", parameters={"kid": "k1", "alg": "ES256"}, private=True)


@pytest.fixture
def issuer() -> Iterator[str]:
    served = bind(0)
    app = Flask(__name__)

    @app.get("/.well-known/openid-configuration")
    def discovery() -> Any:
        return jsonify({"issuer": served.url, "jwks_uri": f"{served.url}/jwks"})

    @app.get("/jwks")
    def jwks() -> Any:
        return jsonify(KeySet([KEY]).as_dict(private=False))

    served.start(app)
    yield served.url
    served.stop()


def token(issuer: str, sub: str = "u1", exp_in: int = 300, key: ECKey = KEY) -> str:
    now = int(time.time())
    return jwt.encode({"alg": "ES256", "kid": key.kid, "typ": "at+jwt"},
                      {"iss": issuer, "aud": AUDIENCE, "sub": sub, "iat": now - 10,
                       "exp": now + exp_in, "roles": ["practitioner"]}, key)


@pytest.fixture
def checks(issuer: str, monkeypatch: pytest.MonkeyPatch) -> tuple[TokenValidator, list[str]]:
    validator = TokenValidator(issuer, AUDIENCE)
    seen: list[str] = []
    check = validator._check

    def counted(raw: str) -> Any:
        seen.append(raw)
        return check(raw)

    monkeypatch.setattr(validator, "_check", counted)
    return validator, seen


def test_the_same_token_is_checked_once(issuer: str, checks: Any) -> None:
    validator, seen = checks
    first = token(issuer)
    assert validator.principal(first).id == validator.principal(first).id == "u1"
    assert seen == [first]
    other = token(issuer, sub="u2")
    assert validator.principal(other).id == "u2"
    assert seen == [first, other]


def test_a_forged_token_is_never_taken_from_the_cache(issuer: str, checks: Any) -> None:
    validator, seen = checks
    good = token(issuer)
    validator.principal(good)
    forged = token(issuer, key=ECKey.generate_key("P-256", parameters={"kid": "k1"},
                                                  private=True))
    with pytest.raises(InvalidToken):
        validator.principal(forged)
    assert seen == [good, forged]


def test_not_remembered_past_its_expiry(issuer: str, checks: Any) -> None:
    validator, seen = checks
    expired = token(issuer, exp_in=-2)  # past exp, within the provider's leeway
    validator.principal(expired)
    validator.principal(expired)
    assert seen == [expired, expired]


def test_not_remembered_longer_than_cache_s(issuer: str, checks: Any,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    validator, seen = checks
    monkeypatch.setattr(tokens, "CACHE_S", 0.0)
    raw = token(issuer)
    validator.principal(raw)
    validator.principal(raw)
    assert seen == [raw, raw]


def test_the_cache_is_bounded(issuer: str, checks: Any, monkeypatch: pytest.MonkeyPatch
                              ) -> None:
    validator, seen = checks
    monkeypatch.setattr(tokens, "CACHE_SIZE", 2)
    a, b, c = (token(issuer, sub=s) for s in ("a", "b", "c"))
    for raw in (a, b, c, b, a):
        validator.principal(raw)
    assert seen == [a, b, c, a]  # a was dropped when c came; b stayed
    assert len(validator._validated) == 2
