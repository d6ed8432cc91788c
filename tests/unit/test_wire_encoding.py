"""The broker's hot-path encodings: the body encoded once per lookup, and ES256
tokens made with ``cryptography`` that joserfc (the adapter side) accepts."""

from __future__ import annotations

import json

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from adapters.protocol import (
    RequestRefused,
    WirePayload,
    encode_body,
    es256_compact,
    generate_signing_key,
    sign_request,
    verify_request,
)


def test_a_wire_payload_is_encoded_once_and_as_a_plain_dict_would_be() -> None:
    data = {"lookup_id": "L1", "child": {"given_name": "Zoë"}, "include_past": True}
    payload = WirePayload(data)
    first = encode_body(payload)
    assert first == encode_body(dict(data))
    assert json.loads(first) == data
    assert encode_body(payload) is first  # the same bytes object: not encoded again


def test_es256_tokens_are_verified_by_joserfc() -> None:
    key = generate_signing_key("k1")
    token = es256_compact({"alg": "ES256", "kid": "k1", "typ": "JWT"}, {"sub": "x", "n": 1},
                          key)
    decoded = jwt.decode(token, KeySet([ECKey.import_key(key.as_dict(private=False))]),
                         algorithms=["ES256"])
    assert decoded.claims == {"sub": "x", "n": 1}
    assert decoded.header["kid"] == "k1"


def test_a_signed_request_passes_the_adapters_check_and_a_changed_body_does_not() -> None:
    key = generate_signing_key("k1")
    body = encode_body(WirePayload({"lookup_id": "L1"}))
    token = sign_request(body, key, issuer="broker", audience="leeds-cs")
    keys = KeySet([ECKey.import_key(key.as_dict(private=False))])
    seen: set[str] = set()

    def seen_before(jti: str, _exp: int) -> bool:
        found = jti in seen
        seen.add(jti)
        return found

    verified = verify_request(f"Bearer {token}", body, keys=lambda _kid: keys,
                              audience="leeds-cs", issuer="broker", seen_before=seen_before)
    assert verified.issuer == "broker"
    with pytest.raises(RequestRefused, match="body hash"):
        verify_request(f"Bearer {sign_request(body, key, issuer='broker', audience='leeds-cs')}",
                       body + b" ", keys=lambda _kid: keys, audience="leeds-cs",
                       seen_before=seen_before)
    other = generate_signing_key("k1")  # same kid, another key: the signature fails
    with pytest.raises(RequestRefused, match="bad signature"):
        verify_request(f"Bearer {sign_request(body, other, issuer='broker', audience='leeds-cs')}",
                       body, keys=lambda _kid: keys, audience="leeds-cs",
                       seen_before=seen_before)


def test_only_p256_keys_sign_es256() -> None:
    wrong = ECKey.generate_key("P-384", parameters={"kid": "k2"}, private=True)
    with pytest.raises(ValueError, match="P-256"):
        es256_compact({"alg": "ES256"}, {}, wrong)
