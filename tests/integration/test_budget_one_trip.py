"""The budget's one-round-trip spending (federator/lookup/budget_redis.py) against
``limits``' own moving window in the real Redis: what one script call writes is
what ``MovingWindowRateLimiter.hit`` would have written, limit by limit, as
``limits`` itself reads it back; and a limit without room stops the spending."""

from __future__ import annotations

import random

import pytest
import redis
from limits import RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from federator.lookup.budget_redis import OneTripSpender

pytestmark = pytest.mark.integration


def spenders(redis_url: str, prefix: str) -> tuple[MovingWindowRateLimiter,
                                                    MovingWindowRateLimiter, OneTripSpender]:
    """limits' own limiter under one prefix, and under another the same storage
    read by limits and written by the one-trip script."""
    own = storage_from_string(redis_url, key_prefix=f"{prefix}own")
    ours = storage_from_string(redis_url, key_prefix=f"{prefix}ours")
    return MovingWindowRateLimiter(own), MovingWindowRateLimiter(ours), OneTripSpender(ours)


def test_one_call_spends_as_limits_does_limit_by_limit(redis_url: str,
                                                       redis_prefix: str) -> None:
    reference, reader, one_trip = spenders(redis_url, redis_prefix)
    rng = random.Random(18)
    items = [(RateLimitItemPerMinute(3), "practitioner", "p1"),
             (RateLimitItemPerMinute(5), "practitioner", "p1"),
             (RateLimitItemPerMinute(4), "organisation", "org"),
             (RateLimitItemPerMinute(7), "organisation", "org")]
    for _ in range(40):
        chosen = rng.sample(items, rng.randint(1, len(items)))
        expected = next((i for i, (item, *ids) in enumerate(chosen)
                         if not reference.hit(item, *ids)), None)
        assert one_trip.spend(chosen) == expected
        for item, *ids in items:  # limits reads both the same way
            assert reader.get_window_stats(item, *ids).remaining == \
                reference.get_window_stats(item, *ids).remaining
            assert reader.test(item, *ids) == reference.test(item, *ids)


def test_a_limit_without_room_stops_the_spending(redis_url: str, redis_prefix: str) -> None:
    _, reader, one_trip = spenders(redis_url, redis_prefix)
    own = RateLimitItemPerMinute(2)
    shared = RateLimitItemPerMinute(100)
    chain = [(own, "practitioner", "p1"), (shared, "organisation", "org")]
    assert [one_trip.spend(chain) for _ in range(4)] == [None, None, 0, 0]
    # the organisation's ceiling paid only for the two lookups that were let through
    assert reader.get_window_stats(shared, "organisation", "org").remaining == 98
    assert reader.get_window_stats(own, "practitioner", "p1").remaining == 0


def test_the_window_moves_on(redis_url: str, redis_prefix: str) -> None:
    *_, one_trip = spenders(redis_url, redis_prefix)
    item = RateLimitItemPerSecond(1)
    chain = [(item, "practitioner", "p2")]
    assert one_trip.spend(chain, now=1000.0) is None
    assert one_trip.spend(chain, now=1000.5) == 0  # still within the second
    assert one_trip.spend(chain, now=1001.2) is None  # a second later: room again


def test_a_redis_that_is_down_is_an_error_not_a_pass(redis_prefix: str) -> None:
    storage = storage_from_string("redis://127.0.0.1:1/0", key_prefix=redis_prefix,
                                  socket_connect_timeout=0.2)
    with pytest.raises(redis.RedisError):
        OneTripSpender(storage).spend([(RateLimitItemPerMinute(1), "practitioner", "p3")])


def test_only_a_plain_redis_is_spent_in_one_trip(redis_url: str, redis_prefix: str) -> None:
    from federator.lookup.budget_redis import one_trip_spender

    assert one_trip_spender(storage_from_string("memory://")) is None
    assert isinstance(one_trip_spender(storage_from_string(redis_url,
                                                           key_prefix=redis_prefix)),
                      OneTripSpender)
