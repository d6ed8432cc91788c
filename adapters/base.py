"""One base for every outbound client: timing, logging, and turning transport
errors into the domain's outcomes (``raise ... from e``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

log = logging.getLogger("adapters")


class AdapterFailure(Exception):
    """An authority could not give an answer; ``outcome`` says how."""

    outcome = "error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class AdapterTimeout(AdapterFailure):
    outcome = "timeout"


class AdapterError(AdapterFailure):
    outcome = "error"


@dataclass(frozen=True)
class Target:
    """What a client needs to know about one registered endpoint."""

    id: str
    url: str
    timeout_ms: int
    credentials: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Reply:
    status: int
    body: bytes
    elapsed_ms: int


class OutboundClient:
    """Owns the connection pool; subclasses speak one protocol."""

    protocol = ""

    def __init__(self, *, max_answer_bytes: int = 1024 * 1024, pool_size: int = 8,
                 user_agent: str = "federator") -> None:
        self.max_answer_bytes = max_answer_bytes
        self.user_agent = user_agent
        self.pool = urllib3.PoolManager(
            num_pools=256, maxsize=pool_size, block=False, retries=False,
        )

    def post(self, target: Target, path: str, body: bytes, headers: Mapping[str, str], *,
             deadline: float) -> Reply:
        return self.request("POST", target, path, body=body, headers=headers, deadline=deadline)

    def request(self, method: str, target: Target, path: str, *, body: bytes | None = None,
                headers: Mapping[str, str] | None = None, deadline: float) -> Reply:
        """One attempt, bounded by ``deadline`` (a ``time.monotonic()`` instant)."""
        started = time.monotonic()
        remaining = min(deadline - started, target.timeout_ms / 1000)
        if remaining <= 0:
            raise AdapterTimeout("no time left before the deadline")
        url = target.url.rstrip("/") + path
        all_headers = {"User-Agent": self.user_agent, "Accept": "application/json",
                       **(headers or {})}
        if body is not None:
            all_headers.setdefault("Content-Type", "application/json")
        timeout = urllib3.Timeout(connect=min(remaining, 3.0), read=remaining)
        try:
            response = self.pool.request(
                method, url, body=body, headers=all_headers, timeout=timeout,
                preload_content=False, redirect=False, retries=False,
            )
            try:
                data = self._read_capped(response, min(deadline, started + remaining))
            finally:
                response.release_conn()
        except NewConnectionError as e:  # a subclass of ConnectTimeoutError: test it first
            raise AdapterError("could not connect") from e
        except (ConnectTimeoutError, ReadTimeoutError) as e:
            raise AdapterTimeout("no answer before the deadline") from e
        except (ProtocolError, HTTPError) as e:
            raise AdapterError("connection failed") from e
        elapsed = int((time.monotonic() - started) * 1000)
        log.info("adapter call", extra={"authority": target.id, "status": response.status,
                                        "elapsed_ms": elapsed})
        return Reply(status=response.status, body=data, elapsed_ms=elapsed)

    def _read_capped(self, response: Any, deadline: float) -> bytes:
        chunks, size = [], 0
        for chunk in response.stream(16384):
            size += len(chunk)
            if size > self.max_answer_bytes:
                raise AdapterError(f"answer larger than {self.max_answer_bytes} bytes")
            if time.monotonic() > deadline:
                raise AdapterTimeout("answer still arriving at the deadline")
            chunks.append(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        self.pool.clear()
