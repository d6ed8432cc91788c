"""Where the FHIR R4 client keeps access tokens (and discovered token URLs):
in-process, or in Redis shared by several broker processes."""

from __future__ import annotations

import threading
import time
from typing import Protocol

import redis


class TokenCache(Protocol):
    def get(self, key: str) -> str | None: ...
    def set(self, key: str, value: str, ttl_s: int) -> None: ...
    def delete(self, key: str) -> None: ...


class MemoryTokenCache:
    """For one process; several broker processes share tokens through Redis."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            held = self._items.get(key)
            if held is None or held[0] <= time.monotonic():
                self._items.pop(key, None)
                return None
            return held[1]

    def set(self, key: str, value: str, ttl_s: int) -> None:
        with self._lock:
            self._items[key] = (time.monotonic() + ttl_s, value)

    def delete(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)


class RedisTokenCache:
    def __init__(self, client: redis.Redis, prefix: str = "federator:") -> None:
        self.client = client
        self.prefix = prefix + "fhir-token:"

    def get(self, key: str) -> str | None:
        value = self.client.get(self.prefix + key)
        return value.decode() if isinstance(value, bytes) else value

    def set(self, key: str, value: str, ttl_s: int) -> None:
        self.client.set(self.prefix + key, value, ex=max(1, ttl_s))

    def delete(self, key: str) -> None:
        self.client.delete(self.prefix + key)


__all__ = ["MemoryTokenCache", "RedisTokenCache", "TokenCache"]
