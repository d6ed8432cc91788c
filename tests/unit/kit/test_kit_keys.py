from __future__ import annotations

import pytest
import responses

from adapters.kit.keys import BrokerKeys, KeysUnavailable
from adapters.protocol import generate_signing_key, public_jwks

URL = "https://broker.example/.well-known/jwks.json"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@responses.activate
def test_fetches_once_and_caches():
    key = generate_signing_key("k1")
    responses.get(URL, json=public_jwks([key]))
    keys = BrokerKeys(URL, clock=Clock())
    assert [k.kid for k in keys("k1").keys] == ["k1"]
    keys("k1")
    keys(None)
    assert len(responses.calls) == 1


@responses.activate
def test_unknown_kid_refetches_but_rate_limited():
    clock = Clock()
    old, new = generate_signing_key("old"), generate_signing_key("new")
    responses.get(URL, json=public_jwks([old]))
    keys = BrokerKeys(URL, min_refresh_s=10, clock=clock)
    keys("old")
    responses.replace(responses.GET, URL, json=public_jwks([old, new]))
    clock.now += 1
    for _ in range(50):  # a flood of unknown kids inside the window: no fetch
        keys("made-up")
    assert len(responses.calls) == 1
    clock.now += 10
    assert {k.kid for k in keys("new").keys} == {"old", "new"}
    assert len(responses.calls) == 2
    keys("new")
    assert len(responses.calls) == 2


@responses.activate
def test_refreshes_after_max_age():
    clock = Clock()
    responses.get(URL, json=public_jwks([generate_signing_key("a")]))
    keys = BrokerKeys(URL, max_age_s=60, clock=clock)
    keys("a")
    clock.now += 61
    keys("a")
    assert len(responses.calls) == 2


@responses.activate
def test_private_parts_are_dropped():
    key = generate_signing_key("k")
    responses.get(URL, json={"keys": [key.as_dict(private=True)]})
    keyset = BrokerKeys(URL, clock=Clock())("k")
    assert not keyset.keys[0].is_private


@responses.activate
def test_unreachable_broker_without_cache_is_an_error():
    responses.get(URL, status=503)
    with pytest.raises(KeysUnavailable):
        BrokerKeys(URL, clock=Clock())("k")


@responses.activate
def test_failed_refresh_keeps_the_cached_keys():
    clock = Clock()
    responses.get(URL, json=public_jwks([generate_signing_key("a")]))
    keys = BrokerKeys(URL, min_refresh_s=1, clock=clock)
    keys("a")
    responses.replace(responses.GET, URL, body="not json")
    clock.now += 5
    assert [k.kid for k in keys("b").keys] == ["a"]
    assert len(responses.calls) == 2
