"""SMART Backend Services against the loopback FHIR server (``support/fhir_server.py``),
whose token endpoint verifies each client assertion with joserfc against the
public JWKS registered for the broker: signature, ``aud`` = its token URL,
``iss`` = ``sub`` = client id, ``exp`` within five minutes, ``jti`` never reused."""

from __future__ import annotations

import json

import pytest
import redis
from support.fhir_server import (
    CLIENT_ID,
    FhirServer,
    by_name,
    deadline,
    fhir_client,
    payload,
    serve,
)

from adapters.base import AdapterFailure
from adapters.fhir_r4 import FhirR4Client, RedisTokenCache
from adapters.smart_auth import (
    DEFAULT_SCOPE,
    generate_private_key,
    load_private_key,
    public_jwks,
)

pytestmark = pytest.mark.integration


fhir_server = pytest.fixture(serve, name="fhir_server")
client = pytest.fixture(fhir_client, name="client")


def registered(server: FhirServer, alg: str = "ES384") -> str:
    """A new private key whose public JWKS the server has registered."""
    private = generate_private_key(alg)
    server.smart_jwks = public_jwks((load_private_key(private), None))
    return private


def test_lookup_with_smart_backend_services(fhir_server: FhirServer,
                                            client: FhirR4Client) -> None:
    private = registered(fhir_server)
    answer = client.lookup(fhir_server.smart_target(private), payload(), deadline=deadline())
    assert answer["status"] == "match"
    assert set(by_name(answer)) == {"Rita Shah", "Tom Bell", "Una Cole", "Vic Dunn"}
    assert fhir_server.refusals == [] and len(fhir_server.assertions) == 1
    claims = fhir_server.assertions[0]
    assert claims["iss"] == claims["sub"] == CLIENT_ID
    assert claims["aud"] == f"{fhir_server.url}/token"


def test_rs384_key_and_a_pem_are_accepted(fhir_server: FhirServer,
                                          client: FhirR4Client) -> None:
    key = load_private_key(generate_private_key("RS384"))
    fhir_server.smart_jwks = public_jwks((key, None))
    pem = key.as_pem(private=True).decode()
    answer = client.lookup(fhir_server.smart_target(pem), payload(), deadline=deadline())
    assert answer["status"] == "match" and len(fhir_server.assertions) == 1


def test_token_is_cached_no_second_assertion(fhir_server: FhirServer,
                                             client: FhirR4Client) -> None:
    private = registered(fhir_server)
    target = fhir_server.smart_target(private)
    client.lookup(target, payload(), deadline=deadline())
    client.lookup(target, payload(), deadline=deadline())
    assert fhir_server.token_requests == 1 and len(fhir_server.assertions) == 1
    fhir_server.tokens.clear()  # revoked: one new assertion, with a new jti
    assert client.lookup(target, payload(), deadline=deadline())["status"] == "match"
    assert len(fhir_server.assertions) == 2
    assert fhir_server.assertions[0]["jti"] != fhir_server.assertions[1]["jti"]
    assert fhir_server.refusals == []


def test_wrong_key_is_refused_with_a_clear_error(fhir_server: FhirServer,
                                                 client: FhirR4Client) -> None:
    registered(fhir_server)
    stranger = generate_private_key()  # signs, but its public key was never registered
    with pytest.raises(AdapterFailure) as e:
        client.lookup(fhir_server.smart_target(stranger), payload(), deadline=deadline())
    assert e.value.outcome == "error"
    assert e.value.detail == ("could not obtain an access token: the token endpoint refused "
                              "the SMART client assertion (HTTP 401 invalid_client)")
    assert fhir_server.refusals == ["signature"]  # no registered key verifies it
    assert fhir_server.searches == []


def test_same_kid_other_key_fails_the_signature(fhir_server: FhirServer,
                                                client: FhirR4Client) -> None:
    private = json.loads(registered(fhir_server))
    impostor = json.loads(generate_private_key())
    impostor["kid"] = private["kid"]
    with pytest.raises(AdapterFailure) as e:
        client.lookup(fhir_server.smart_target(json.dumps(impostor)), payload(),
                      deadline=deadline())
    assert "refused the SMART client assertion" in e.value.detail
    assert fhir_server.refusals == ["signature"]


def test_token_url_discovered_from_smart_configuration(fhir_server: FhirServer,
                                                       client: FhirR4Client) -> None:
    fhir_server.smart_config = True
    private = registered(fhir_server)
    target = fhir_server.smart_target(private, token_url="")
    assert "token_url" not in target.credentials
    assert client.lookup(target, payload(), deadline=deadline())["status"] == "match"
    assert fhir_server.assertions[0]["aud"] == f"{fhir_server.url}/token"


def test_no_token_url_and_no_smart_configuration_is_an_error(
        fhir_server: FhirServer, client: FhirR4Client) -> None:
    private = registered(fhir_server)
    with pytest.raises(AdapterFailure) as e:
        client.lookup(fhir_server.smart_target(private, token_url=""), payload(),
                      deadline=deadline())
    assert "smart-configuration names no usable token_endpoint" in e.value.detail


def test_unusable_private_key_is_an_error_without_the_key(
        fhir_server: FhirServer, client: FhirR4Client) -> None:
    with pytest.raises(AdapterFailure) as e:
        client.lookup(fhir_server.smart_target("not-a-key-XYZ"), payload(), deadline=deadline())
    assert e.value.detail == ("SMART credentials: private_key is not a readable PEM or "
                              "JWK private key")
    assert fhir_server.token_requests == 0


def test_scope_is_sent_as_configured(fhir_server: FhirServer, client: FhirR4Client) -> None:
    private = registered(fhir_server)
    seen: list[str] = []
    original = fhir_server.app.view_functions["token"]

    def spy() -> object:
        from flask import request
        seen.append(request.form["scope"])
        return original()

    fhir_server.app.view_functions["token"] = spy
    client.lookup(fhir_server.smart_target(private), payload(), deadline=deadline())
    client.lookup(fhir_server.smart_target(private, scope="system/Patient.rs"), payload(),
                  deadline=deadline())
    assert seen == [DEFAULT_SCOPE, "system/Patient.rs"]


def test_smart_tokens_shared_through_redis(fhir_server: FhirServer, redis_url: str,
                                           redis_prefix: str) -> None:
    private = registered(fhir_server)
    conn = redis.Redis.from_url(redis_url)
    first = FhirR4Client(tokens=RedisTokenCache(conn, redis_prefix))
    second = FhirR4Client(tokens=RedisTokenCache(conn, redis_prefix))
    try:
        first.lookup(fhir_server.smart_target(private), payload(), deadline=deadline())
        second.lookup(fhir_server.smart_target(private), payload(), deadline=deadline())
        assert len(fhir_server.assertions) == 1
    finally:
        first.close()
        second.close()
        conn.close()


def test_the_test_server_refuses_bad_assertions() -> None:
    """The server's checks are real: each broken claim is refused for its reason."""
    import time

    from joserfc import jwt as jose_jwt
    from support.fhir_server import verify_assertion

    from adapters.smart_auth import ASSERTION_TYPE, build_assertion

    key = load_private_key(generate_private_key())
    jwks = public_jwks((key, None))
    url, now = "http://127.0.0.1:1/token", int(time.time())

    def check(assertion: str, seen: set[str] | None = None) -> str | None:
        form = {"grant_type": "client_credentials", "scope": DEFAULT_SCOPE,
                "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}
        return verify_assertion(form, jwks, token_url=url, client_id=CLIENT_ID,
                                seen_jti=set() if seen is None else seen, now=now)[0]

    def forged(**claims: object) -> str:
        base = {"iss": CLIENT_ID, "sub": CLIENT_ID, "aud": url, "exp": now + 300, "jti": "j"}
        return jose_jwt.encode({"alg": "ES384", "kid": jwks["keys"][0]["kid"]},
                               {**base, **claims}, key, algorithms=["ES384"])

    good = build_assertion(key, client_id=CLIENT_ID, token_url=url, now=now)
    seen: set[str] = set()
    assert check(good, seen) is None
    assert check(good, seen) == "jti"  # replayed
    assert check(build_assertion(key, client_id=CLIENT_ID, token_url=url + "x", now=now)) \
        == "aud"
    assert check(build_assertion(key, client_id="someone", token_url=url, now=now)) \
        == "iss/sub"
    assert check(forged(sub="other")) == "iss/sub"
    assert check(forged(exp=now + 301)) == "exp"
    assert check(forged(exp=now - 1)) == "exp"
    assert check(forged()) is None


@pytest.mark.parametrize("smart", [True, False])
def test_the_token_request_goes_through_the_url_guard(fhir_server: FhirServer,
                                                      smart: bool) -> None:
    """Both token requests (SMART and client secret) use the client's pool, whose
    resolver checks the address of every new connection."""
    private = registered(fhir_server)
    token_url = f"http://localhost:{fhir_server.server.server_port}/token"

    def resolve(host: str, port: int) -> str:
        if host == "localhost":
            raise ValueError("not allowed")
        return host

    target = (fhir_server.smart_target(private, token_url=token_url) if smart
              else fhir_server.target(token_url=token_url))
    guarded = FhirR4Client(user_agent="federator-test", resolve=resolve)
    try:
        with pytest.raises(AdapterFailure) as e:
            guarded.lookup(target, payload(), deadline=deadline())
    finally:
        guarded.close()
    assert e.value.detail == "address not allowed" and fhir_server.token_requests == 0


@pytest.mark.parametrize("smart", [True, False])
def test_a_redirecting_token_endpoint_is_not_followed(fhir_server: FhirServer,
                                                      client: FhirR4Client, smart: bool) -> None:
    """The signed assertion (or the client secret) goes only to the configured
    token URL: a 307 from it is a failure, not a second request elsewhere."""
    token_url = f"{fhir_server.url}/token-moved"
    target = (fhir_server.smart_target(registered(fhir_server), token_url=token_url) if smart
              else fhir_server.target(token_url=token_url))
    with pytest.raises(AdapterFailure) as e:
        client.lookup(target, payload(), deadline=deadline())
    assert "HTTP 307" in e.value.detail and fhir_server.token_requests == 0
