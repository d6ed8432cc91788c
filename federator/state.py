"""Shared short-lived state: Redis when configured, in-process otherwise.

A handful of key operations (the circuit breakers and replay nonces are built
on them). With Redis configured, any Redis error becomes ``StateUnavailable``:
callers refuse what they cannot enforce rather than carry on without it. The
Redis client reconnects by itself, so nothing needs restarting when Redis is back.

A connection pooled before Redis restarted may be dead without knowing it (Redis
on another host, or behind a proxy: no close ever reached the broker); its first
use fails with a connection error. Such a command is tried once more at once, on
a fresh connection (``client_options``, the rate limiter's storage too), so the
first lookups after Redis is back are answered rather than refused. Timeouts are
not tried again: a Redis that does not answer within the socket timeout would
only double the wait, and a counter may already have counted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

#: Seconds to connect to Redis, and to wait for any answer.
TIMEOUT_S = 1.0


def client_options() -> dict[str, object]:
    """Options for a ``redis.Redis`` client of the broker: the socket timeouts, and
    one immediate retry on a fresh connection after a connection error (redis-py 5
    retries only errors named in ``retry_on_error`` as well as in ``retry``)."""
    return {"socket_timeout": TIMEOUT_S, "socket_connect_timeout": TIMEOUT_S,
            "retry": Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
            "retry_on_error": [redis.ConnectionError]}


class StateUnavailable(RuntimeError):
    """Redis is configured but cannot be reached or answered with an error."""


class SharedState:
    """The few operations the broker needs, over Redis or a local dict."""

    def __init__(self, redis_url: str | None, prefix: str = "federator:") -> None:
        self.prefix = prefix
        self.redis = redis.Redis.from_url(redis_url, **client_options()) if redis_url else None
        self._local: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    @property
    def kind(self) -> str:
        return "redis" if self.redis is not None else "in-process"

    def ping(self) -> bool:
        if self.redis is None:
            return True
        try:
            return bool(self.redis.ping())
        except redis.RedisError:
            return False

    def put(self, key: str, value: str, ttl_s: int, *, only_if_absent: bool = False) -> bool:
        """Set ``key`` for ``ttl_s`` seconds; with ``only_if_absent``, False if it was there."""
        if self.redis is not None:
            try:
                return bool(self.redis.set(self.prefix + key, value, nx=only_if_absent,
                                           ex=ttl_s))
            except redis.RedisError as e:
                raise StateUnavailable("shared state unavailable") from e
        now = time.monotonic()
        with self._lock:
            held = self._local.get(key)
            if only_if_absent and held and held[0] > now:
                return False
            self._local[key] = (now + ttl_s, value)
            self._sweep(now)
            return True

    def get_many(self, keys: Sequence[str]) -> list[str | None]:
        """The values of ``keys`` (None where absent), in one round trip."""
        if not keys:
            return []
        if self.redis is not None:
            try:
                values = self.redis.mget([self.prefix + k for k in keys])
            except redis.RedisError as e:
                raise StateUnavailable("shared state unavailable") from e
            return [v.decode() if isinstance(v, bytes) else v for v in values]
        now = time.monotonic()
        with self._lock:
            found = [self._local.get(k) for k in keys]
        return [held[1] if held and held[0] > now else None for held in found]

    def incr(self, key: str, ttl_s: int) -> int:
        """Add one to a counter and (re)start its expiry; the new value."""
        if self.redis is not None:
            try:
                pipe = self.redis.pipeline(transaction=False)
                pipe.incr(self.prefix + key)
                pipe.expire(self.prefix + key, ttl_s)
                value, _ = pipe.execute()
            except redis.RedisError as e:
                raise StateUnavailable("shared state unavailable") from e
            return int(value)
        now = time.monotonic()
        with self._lock:
            held = self._local.get(key)
            value = int(held[1]) + 1 if held and held[0] > now else 1
            self._local[key] = (now + ttl_s, str(value))
            self._sweep(now)
            return value

    def delete(self, *keys: str) -> None:
        if not keys:
            return
        if self.redis is not None:
            try:
                self.redis.delete(*(self.prefix + k for k in keys))
            except redis.RedisError as e:
                raise StateUnavailable("shared state unavailable") from e
            return
        with self._lock:
            for key in keys:
                self._local.pop(key, None)

    def _sweep(self, now: float) -> None:
        """Drop expired keys once the local store grows (called with the lock held)."""
        if len(self._local) > 10000:
            for k in [k for k, (exp, _) in self._local.items() if exp <= now]:
                del self._local[k]
