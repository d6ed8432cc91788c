from __future__ import annotations

import os
import threading
import time
import uuid

import pytest
import redis

from adapters.kit.replay import MemoryReplayGuard, RedisReplayGuard, make_replay_guard


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_memory_guard_refuses_a_second_use():
    guard = MemoryReplayGuard(clock=Clock())
    assert guard("a", 1_000_060) is False
    assert guard("a", 1_000_060) is True
    assert guard("b", 1_000_060) is False


def test_memory_guard_forgets_after_expiry_plus_leeway():
    clock = Clock()
    guard = MemoryReplayGuard(leeway_s=10, clock=clock)
    guard("a", 1_000_060)
    clock.now = 1_000_069
    assert guard("a", 1_000_060) is True
    clock.now = 1_000_071
    guard("other", 1_000_200)  # triggers a purge
    assert len(guard) == 1
    assert guard("a", 1_000_060) is False


def test_memory_guard_is_thread_safe():
    guard = MemoryReplayGuard()
    exp = int(time.time()) + 60
    results: list[bool] = []
    barrier = threading.Barrier(16)

    def use() -> None:
        barrier.wait()
        results.append(guard("same", exp))

    threads = [threading.Thread(target=use) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(False) == 1


def test_make_replay_guard_without_redis_is_in_process():
    assert isinstance(make_replay_guard(None), MemoryReplayGuard)


REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def redis_client():
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        client.close()
        if os.environ.get("FEDERATOR_REQUIRE_SERVICES"):
            pytest.fail("Redis at 127.0.0.1:6379 is required but unreachable")
        pytest.skip("Redis at 127.0.0.1:6379 unreachable")
    yield client
    client.close()


def test_redis_guard_refuses_a_second_use(redis_client):
    prefix = f"test:kit:{uuid.uuid4().hex}:"
    guard = RedisReplayGuard(redis_client, prefix=prefix, leeway_s=10)
    exp = int(time.time()) + 60
    try:
        assert guard("jti-1", exp) is False
        assert guard("jti-1", exp) is True
        assert guard("jti-2", exp) is False
        ttl = redis_client.ttl(prefix + "jti-1")
        assert 60 < ttl <= 70
        # A second guard (another worker) shares what the first has seen.
        other = RedisReplayGuard(redis_client, prefix=prefix)
        assert other("jti-1", exp) is True
    finally:
        redis_client.delete(prefix + "jti-1", prefix + "jti-2")


def test_make_replay_guard_with_redis_url(redis_client):
    guard = make_replay_guard(REDIS_URL, authority_id="t-" + uuid.uuid4().hex)
    assert isinstance(guard, RedisReplayGuard)
    exp = int(time.time()) + 30
    try:
        assert guard("x", exp) is False
        assert guard("x", exp) is True
    finally:
        redis_client.delete(guard.prefix + "x")
        guard.client.close()
