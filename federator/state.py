"""Shared short-lived state: Redis when configured, in-process otherwise."""

from __future__ import annotations

import threading
import time

import redis


class SharedState:
    """The few operations the broker needs, over Redis or a local dict."""

    def __init__(self, redis_url: str | None, prefix: str = "federator:") -> None:
        self.prefix = prefix
        self.redis = redis.Redis.from_url(redis_url, socket_timeout=1.0,
                                          socket_connect_timeout=1.0) if redis_url else None
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

    def set_if_absent(self, key: str, value: str, ttl_s: int) -> bool:
        """True when the key was not there and is now set for ``ttl_s`` seconds."""
        if self.redis is not None:
            return bool(self.redis.set(self.prefix + key, value, nx=True, ex=ttl_s))
        now = time.monotonic()
        with self._lock:
            held = self._local.get(key)
            if held and held[0] > now:
                return False
            self._local[key] = (now + ttl_s, value)
            if len(self._local) > 10000:
                for k in [k for k, (exp, _) in self._local.items() if exp <= now]:
                    del self._local[k]
            return True
