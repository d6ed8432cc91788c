"""One base for every outbound client: timing, logging, and turning transport
errors into the domain's outcomes (``raise ... from e``).

Every call is bounded by the lookup's deadline: the connect and read limits
come from the time left, and the body is read with ``read1`` (whatever has
arrived) with the socket's timeout shrunk to the time left before each read,
so an authority that drips bytes cannot hold a worker past the deadline.

The broker's hot path (``federator-lookup/1`` during a lookup) uses the
event-loop counterpart in ``adapters/aio.py``, which keeps the same promises;
this one serves the FHIR client, conformance checks, probes and tools.
"""

from __future__ import annotations

import http.client
import logging
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.util.connection import create_connection

from adapters import tracing

log = logging.getLogger("adapters")

Resolver = Callable[[str, int], str]
"""``resolve(host, port) -> address`` checked for this connection; raises
``ValueError`` for an address the broker must not reach."""

#: Connecting never needs longer than this, whatever time is left.
CONNECT_LIMIT_S = 3.0
READ_CHUNK = 65536
#: The most bytes an answer's status line and headers may take (an answer needs a
#: few hundred): more is refused as it arrives, never gathered.
MAX_HEADER_BYTES = 16 * 1024


class AdapterFailure(Exception):
    """An authority could not give an answer; ``outcome`` says how."""

    outcome = "error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class AdapterTimeout(AdapterFailure):
    outcome = "timeout"


#: Why a call that never left the broker timed out.
BUSY = "not asked before the deadline: the broker was busy"


class NotSent(AdapterTimeout):
    """The deadline came before the call could leave the broker (its workers or its
    connections to that authority all busy): it says nothing about the authority."""

    def __init__(self, detail: str = BUSY) -> None:
        super().__init__(detail)


class AdapterError(AdapterFailure):
    outcome = "error"


class HeadersTooLarge(AdapterError):
    """The answer's status line and headers ran past the cap."""

    def __init__(self, cap: int) -> None:
        super().__init__(f"answer headers larger than {cap} bytes")


class _HeadBudget:
    """A response's file while its status line and headers are read: ``readline``
    reads no further than the bytes left, and refuses once they are spent."""

    def __init__(self, fp: Any, cap: int) -> None:
        self.fp, self.cap, self.left = fp, cap, cap

    def readline(self, limit: int | None = -1) -> bytes:
        wanted = self.left + 1 if limit is None or limit < 0 else min(limit, self.left + 1)
        line: bytes = self.fp.readline(wanted)
        self.left -= len(line)
        if self.left < 0 or (self.left == 0 and not line.endswith(b"\n")):
            raise HeadersTooLarge(self.cap)
        return line

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fp, name)


def _capped_response(cap: int) -> type[http.client.HTTPResponse]:
    class Capped(http.client.HTTPResponse):
        def begin(self) -> None:
            if self.headers is not None:
                return
            fp, self.fp = self.fp, _HeadBudget(self.fp, cap)  # type: ignore[assignment]
            try:
                super().begin()
            except http.client.HTTPException as e:
                if "more than" in str(e):  # http.client's own count: 100 headers
                    raise AdapterError("answer has more than 100 headers") from e
                raise
            finally:
                self.fp = fp

    return Capped


class AddressRefused(Exception):
    """The resolver refused the address of a new connection (not an ``OSError``,
    so urllib3 lets it through untouched)."""


@dataclass(frozen=True)
class Target:
    """What a client needs to know about one registered endpoint."""

    id: str
    url: str
    timeout_ms: int
    credentials: Mapping[str, str] = field(default_factory=dict)
    #: the authority's registered name (a notice may name it)
    name: str = ""
    #: the endpoint's registered policy (``fhir-r4``: :mod:`adapters.fhir_policy`)
    policy: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Reply:
    status: int
    body: bytes
    elapsed_ms: int


def call_limits(now: float, deadline: float, timeout_ms: int) -> tuple[float, float]:
    """``(connect, read)`` seconds for one call: the time left before the lookup's
    deadline, no more than the endpoint's own limit; connect at most 3 s.
    A result of ``(0, 0)`` or less means there is no time left."""
    remaining = min(deadline - now, timeout_ms / 1000)
    return min(remaining, CONNECT_LIMIT_S), remaining


def _checked_connection(base: type[HTTPConnection], resolve: Resolver | None,
                        max_header_bytes: int = MAX_HEADER_BYTES) -> type[HTTPConnection]:
    """A connection class whose answers' headers are capped and that, given
    ``resolve``, asks it for the address of every new connection and connects
    there; ``host`` (Host header, TLS SNI and the certificate's name check) stays
    the registered name."""

    class Capped(base):  # type: ignore[valid-type, misc]
        response_class = _capped_response(max_header_bytes)

    if resolve is None:
        return Capped

    class Checked(Capped):
        def _new_conn(self) -> socket.socket:
            # ``self.host`` is not touched: urllib3 derives Host, SNI and the
            # certificate check from it.
            try:
                address = resolve(self.host, self.port)
            except ValueError as e:
                raise AddressRefused(str(e)) from e
            try:
                return create_connection((address, self.port), self.timeout,
                                         source_address=self.source_address,
                                         socket_options=self.socket_options)
            except TimeoutError as e:
                raise ConnectTimeoutError(self, f"connect to {self.host} timed out") from e
            except OSError as e:
                raise NewConnectionError(self, f"could not connect: {e}") from e

    return Checked


class OutboundClient:
    """Owns the connection pools (one per endpoint); subclasses speak one protocol."""

    protocol = ""

    def __init__(self, *, max_answer_bytes: int = 1024 * 1024, pool_size: int = 8,
                 user_agent: str = "federator", resolve: Resolver | None = None,
                 max_header_bytes: int = MAX_HEADER_BYTES, ca_file: str | None = None) -> None:
        self.max_answer_bytes = max_answer_bytes
        self.max_header_bytes = max_header_bytes
        self.user_agent = user_agent
        self.pool = urllib3.PoolManager(
            num_pools=512, maxsize=pool_size, block=False, retries=False,
            **({"ca_certs": ca_file} if ca_file else {}),  # else the system's store
        )
        http = type("CheckedHTTPPool", (HTTPConnectionPool,), {
            "ConnectionCls": _checked_connection(HTTPConnection, resolve, max_header_bytes)})
        https = type("CheckedHTTPSPool", (HTTPSConnectionPool,), {
            "ConnectionCls": _checked_connection(HTTPSConnection, resolve, max_header_bytes)})
        self.pool.pool_classes_by_scheme = {"http": http, "https": https}

    def post(self, target: Target, path: str, body: bytes, headers: Mapping[str, str], *,
             deadline: float) -> Reply:
        return self.request("POST", target, path, body=body, headers=headers, deadline=deadline)

    def request(self, method: str, target: Target, path: str, *, body: bytes | None = None,
                headers: Mapping[str, str] | None = None, deadline: float) -> Reply:
        """One attempt (no retry, no redirect), bounded by ``deadline`` (a
        ``time.monotonic()`` instant) and by the endpoint's own timeout."""
        started = time.monotonic()
        connect, read = call_limits(started, deadline, target.timeout_ms)
        if read <= 0:
            raise AdapterTimeout("no time left before the deadline")
        until = started + read
        url = target.url.rstrip("/") + path
        all_headers = {"User-Agent": self.user_agent, "Accept": "application/json",
                       **(headers or {})}
        tracing.inject(all_headers)  # traceparent, when this call has a span
        if body is not None:
            all_headers.setdefault("Content-Type", "application/json")
        try:
            response = self.pool.request(
                method, url, body=body, headers=all_headers,
                timeout=urllib3.Timeout(connect=connect, read=read),
                preload_content=False, redirect=False, retries=False,
            )
            try:
                data = self._read_capped(response, until)
            except BaseException:
                response.close()  # a half-read connection is never reused
                response.release_conn()
                raise
            response.release_conn()
        except AddressRefused as e:
            raise AdapterError("address not allowed") from e
        except NewConnectionError as e:  # a subclass of ConnectTimeoutError: test it first
            raise AdapterError("could not connect") from e
        except (ConnectTimeoutError, ReadTimeoutError, TimeoutError) as e:
            raise AdapterTimeout("no answer before the deadline") from e
        except (ProtocolError, HTTPError, OSError) as e:
            raise AdapterError("connection failed") from e
        elapsed = int((time.monotonic() - started) * 1000)
        log.debug("adapter call", extra={"authority": target.id, "status": response.status,
                                         "elapsed_ms": elapsed})
        tracing.note_status(response.status)
        return Reply(status=response.status, body=data, elapsed_ms=elapsed)

    def _read_capped(self, response: Any, until: float) -> bytes:
        """The body, at most ``max_answer_bytes``, all of it before ``until``."""
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > self.max_answer_bytes:
            raise AdapterError(f"answer larger than {self.max_answer_bytes} bytes")
        sock = getattr(response.connection, "sock", None)
        chunks: list[bytes] = []
        size = 0
        while True:
            left = until - time.monotonic()
            if left <= 0:
                raise AdapterTimeout("answer still arriving at the deadline")
            if sock is not None:
                sock.settimeout(left)
            chunk = response.read1(READ_CHUNK)
            if not chunk:
                break
            size += len(chunk)
            if size > self.max_answer_bytes:
                raise AdapterError(f"answer larger than {self.max_answer_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        self.pool.clear()
