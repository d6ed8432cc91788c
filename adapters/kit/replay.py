"""Remember the ``jti`` of every request until it expires, to refuse replays."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

import redis

DEFAULT_LEEWAY_S = 10


class ReplayGuard(Protocol):
    def __call__(self, jti: str, exp: int) -> bool:
        """Record ``jti`` until ``exp`` (+ leeway); True when it was already seen."""
        ...


class MemoryReplayGuard:
    """In-process store: right for one process only (several workers need Redis)."""

    def __init__(self, *, leeway_s: int = DEFAULT_LEEWAY_S,
                 clock: Callable[[], float] = time.time) -> None:
        self.leeway_s = leeway_s
        self._clock = clock
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._next_purge = 0.0

    def __call__(self, jti: str, exp: int) -> bool:
        now = self._clock()
        with self._lock:
            if now >= self._next_purge:
                self._purge(now)
            until = self._seen.get(jti)
            if until is not None and until > now:
                return True
            self._seen[jti] = exp + self.leeway_s
            return False

    def _purge(self, now: float) -> None:
        for jti in [j for j, until in self._seen.items() if until <= now]:
            del self._seen[jti]
        self._next_purge = now + 1.0

    def __len__(self) -> int:
        with self._lock:
            return len(self._seen)


class RedisReplayGuard:
    """Shared across processes: ``SET key 1 NX EXAT exp+leeway``."""

    def __init__(self, client: redis.Redis, *, prefix: str = "federator:kit:jti:",
                 leeway_s: int = DEFAULT_LEEWAY_S) -> None:
        self.client = client
        self.prefix = prefix
        self.leeway_s = leeway_s

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "federator:kit:jti:") -> RedisReplayGuard:
        return cls(redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2),
                   prefix=prefix)

    def __call__(self, jti: str, exp: int) -> bool:
        expire_at = max(int(exp) + self.leeway_s, int(time.time()) + 1)
        stored = self.client.set(self.prefix + jti, b"1", nx=True, exat=expire_at)
        return not stored


def make_replay_guard(redis_url: str | None, *, authority_id: str = "") -> ReplayGuard:
    if redis_url:
        return RedisReplayGuard.from_url(redis_url, prefix=f"federator:kit:{authority_id}:jti:")
    return MemoryReplayGuard()
