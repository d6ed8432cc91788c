"""The fan-out's event-loop transport: HTTP/1.1 over asyncio, parsed by httptools.

A national lookup sends 150 requests at once. On threads with urllib3 each one
costs about 300 us of CPU plus a GIL hand-over per system call, so the calls
queue behind each other; on one event loop with httptools (llhttp, Node.js's
parser) each costs about 50 us (``benchmarks/fanout.py``). This module keeps the
same promises as :class:`adapters.base.OutboundClient`, which the other clients
(FHIR, conformance checks, probes) still use:

- one attempt, no redirects, the whole call bounded by the lookup's deadline
  and the endpoint's own limit, connecting within at most 3 s;
- a body over ``max_answer_bytes`` is refused while it streams in, and a status
  line and headers over ``max_header_bytes`` (16 KiB) before they are parsed;
- every new connection asks ``resolve`` for its address (the URL guard, checked
  again for every connection: DNS rebinding) and connects there, keeping the
  registered name for ``Host``, TLS SNI and the certificate check;
- a connection is reused only after a complete answer that allows it, and never
  once it has been idle long enough for the authority to be closing it;
- transport failures become ``AdapterTimeout`` / ``AdapterError`` with the same
  short reasons as the threaded client.

Connections belong to the loop that made them; the client keeps one set per loop.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httptools

from adapters import tracing
from adapters.base import (
    MAX_HEADER_BYTES,
    AdapterError,
    AdapterTimeout,
    HeadersTooLarge,
    NotSent,
    Reply,
    Resolver,
    Target,
    call_limits,
)

log = logging.getLogger("adapters")

#: An idle connection older than this is closed rather than reused: servers
#: commonly drop idle keep-alive connections after 5 s (gunicorn's default), and a
#: request written into a closing connection is lost.
IDLE_LIMIT_S = 4.0


@dataclass(frozen=True)
class _Origin:
    scheme: str
    host: str
    port: int

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


@functools.lru_cache(maxsize=4096)
def _origin(url: str) -> _Origin:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AdapterError("endpoint URL is not http(s)")
    return _Origin(parts.scheme, parts.hostname,
                   parts.port or (443 if parts.scheme == "https" else 80))


@functools.lru_cache(maxsize=4096)
def _request_head(origin: _Origin, url: str, path: str, user_agent: str) -> str:
    """The request line and the headers every call to one endpoint sends alike
    (worked out once per endpoint, not once per call: a lookup of 150 authorities
    split 150 URLs)."""
    base = urlsplit(url).path.rstrip("/")
    return "\r\n".join([f"POST {base}{path} HTTP/1.1", f"Host: {origin.host_header}",
                        f"User-Agent: {user_agent}", "Accept: application/json",
                        "Content-Type: application/json"])


class _Exchange(asyncio.Protocol):
    """One connection; answers one request at a time."""

    def __init__(self, cap: int, head_cap: int = MAX_HEADER_BYTES) -> None:
        self.cap = cap
        self.head_cap = head_cap
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = time.monotonic()
        self._parser: Any = None
        self._done: asyncio.Future[None] | None = None
        self._reset()

    def _reset(self) -> None:
        """What one answer has shown so far (before each request)."""
        self.status = 0
        self.length: int | None = None
        self.chunked = False
        self.headers_done = False
        self.complete = False
        self.keep_alive = False
        self.size = 0
        #: bytes of the status line and headers fed so far
        self.head_size = 0
        self.body: list[bytes] = []

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._parser is None or self._done is None or self._done.done():
            self.close()  # bytes nobody asked for: this connection is not reusable
            return
        try:
            if not self.headers_done:
                # The parser gathers a header's bytes until its line ends: fed no
                # more than the cap allows until the headers are complete, an endless
                # header costs at most the cap, not the broker's memory and loop.
                room = self.head_cap - self.head_size
                head, data = data[:room], data[room:]
                self.head_size += len(head)
                self._parser.feed_data(head)
                if not self.headers_done and (data or self.head_size >= self.head_cap):
                    self._finish(HeadersTooLarge(self.head_cap))
                    return
            if data:
                self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._finish(AdapterError("connection failed: not an HTTP answer"))
            return
        if self.size > self.cap:
            self._finish(AdapterError(f"answer larger than {self.cap} bytes"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._done is not None and not self._done.done():
            if self.headers_done and not self.complete and self.length is None \
                    and not self.chunked and exc is None:
                self.complete = True  # an answer delimited by closing the connection
                self._done.set_result(None)
            else:
                self._done.set_exception(AdapterError("connection failed"))

    # -- httptools callbacks (never raise in them: the parser is C)
    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        if lowered == b"content-length":
            self.length = int(value) if value.strip().isdigit() else None
        elif lowered == b"transfer-encoding" and b"chunked" in value.lower():
            self.chunked = True

    def on_headers_complete(self) -> None:
        self.headers_done = True
        self.status = self._parser.get_status_code()
        if self.length is not None and self.length > self.cap:
            self.size = self.length  # refused before the body arrives

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size <= self.cap:
            self.body.append(body)

    def on_message_complete(self) -> None:
        self.complete = True
        # llhttp answers this only until the parser moves on from the message
        self.keep_alive = bool(self._parser.should_keep_alive())
        if self._done is not None and not self._done.done():
            if self.size > self.cap:  # a whole oversized answer in one read
                self._done.set_exception(AdapterError(f"answer larger than {self.cap} bytes"))
            else:
                self._done.set_result(None)

    # -- one exchange
    async def send(self, request: bytes, until: float) -> tuple[int, bytes]:
        loop = asyncio.get_running_loop()
        self._parser = httptools.HttpResponseParser(self)
        self._done = loop.create_future()
        self._reset()
        assert self.transport is not None
        self.transport.write(request)
        try:
            async with asyncio.timeout_at(until):
                await self._done
        except TimeoutError as e:
            self.close()
            raise AdapterTimeout("answer still arriving at the deadline" if self.headers_done
                                 else "no answer before the deadline") from e
        except BaseException:
            self.close()
            raise
        return self.status, b"".join(self.body)

    def reusable(self) -> bool:
        return not self.closed and self.complete and self.keep_alive

    def _finish(self, error: Exception) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_exception(error)
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            # abort, not close: over TLS, close() sends close_notify and keeps the
            # socket open (asyncio: up to 30 s) for the authority's reply; a loop
            # that stops before the reply leaves it unclosed. The threaded client
            # (urllib3) sends no close_notify either.
            self.transport.abort()


@dataclass
class _Pools:
    """Idle connections per origin, and the slots that bound open ones, for one
    event loop."""

    idle: dict[_Origin, list[_Exchange]] = field(default_factory=dict)
    slots: dict[_Origin, asyncio.Semaphore] = field(default_factory=dict)


class AsyncOutboundClient:
    """The event-loop counterpart of ``OutboundClient``, for the fan-out's hot path."""

    def __init__(self, *, max_answer_bytes: int = 1024 * 1024, pool_size: int = 8,
                 user_agent: str = "federator", resolve: Resolver | None = None,
                 ssl_context: ssl.SSLContext | None = None,
                 max_connections: int = 64, max_header_bytes: int = MAX_HEADER_BYTES,
                 ca_file: str | None = None) -> None:
        self.max_answer_bytes = max_answer_bytes
        self.max_header_bytes = max_header_bytes
        self.pool_size = pool_size
        #: Calls open at once to one authority, per event loop: more wait for a
        #: slot within their deadline (a burst of lookups must not open thousands of
        #: sockets, nor flood one authority).
        self.max_connections = max_connections
        self.user_agent = user_agent
        self.resolve = resolve
        self._ssl_context = ssl_context
        #: a PEM bundle trusted instead of the system's store (the broker's
        #: FEDERATOR_CA_FILE); unset, the system's (and SSL_CERT_FILE, as OpenSSL reads it)
        self.ca_file = ca_file
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pools] = (
            weakref.WeakKeyDictionary())

    @property
    def ssl_context(self) -> ssl.SSLContext:
        if self._ssl_context is None:  # made once: loading the CA store is slow
            self._ssl_context = ssl.create_default_context(cafile=self.ca_file)
        return self._ssl_context

    async def post(self, target: Target, path: str, body: bytes,
                   headers: Mapping[str, str], *, deadline: float) -> Reply:
        """One attempt (no retry, no redirect), bounded by ``deadline`` (a
        ``time.monotonic()`` instant, which is also the event loop's clock)."""
        started = time.monotonic()
        connect, read = call_limits(started, deadline, target.timeout_ms)
        if read <= 0:
            raise AdapterTimeout("no time left before the deadline")
        origin = _origin(target.url)
        # traceparent, when this call has a span
        request = self._request(origin, target.url, path, body, tracing.traced(headers))
        slots = await self._slot(origin, started + read)
        try:
            exchange = await self._connection(origin, started + connect)
            try:
                status, data = await exchange.send(request, started + read)
            except OSError as e:
                exchange.close()
                raise AdapterError("connection failed") from e
            self._release(origin, exchange)
        finally:
            slots.release()
        elapsed = int((time.monotonic() - started) * 1000)
        log.debug("adapter call", extra={"authority": target.id, "status": status,
                                         "elapsed_ms": elapsed})
        tracing.note_status(status)
        return Reply(status=status, body=data, elapsed_ms=elapsed)

    def _request(self, origin: _Origin, url: str, path: str, body: bytes,
                 headers: Mapping[str, str]) -> bytes:
        lines = [_request_head(origin, url, path, self.user_agent),
                 f"Content-Length: {len(body)}"]
        for name, value in headers.items():
            if any(c in value or c in name for c in "\r\n\0"):
                raise AdapterError(f"header {name!r} holds a line break")
            lines.append(f"{name}: {value}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    async def _slot(self, origin: _Origin, until: float) -> asyncio.Semaphore:
        """One of the origin's ``max_connections`` slots, taken (release it after
        the call); ``NotSent`` if none comes free before ``until``."""
        pools = self._pools_here()
        slots = pools.slots.get(origin)
        if slots is None:
            slots = pools.slots[origin] = asyncio.Semaphore(self.max_connections)
        if not slots.locked():
            await slots.acquire()  # free: taken at once, with no timer to set
            return slots
        try:
            async with asyncio.timeout_at(until):
                await slots.acquire()
        except TimeoutError as e:
            raise NotSent() from e
        if time.monotonic() >= until:  # it came free only at the deadline
            slots.release()
            raise NotSent()
        return slots

    def _pools_here(self) -> _Pools:
        loop = asyncio.get_running_loop()
        pools = self._pools.get(loop)
        if pools is None:
            pools = self._pools[loop] = _Pools()
        return pools

    async def _connection(self, origin: _Origin, connect_until: float) -> _Exchange:
        idle = self._pools_here().idle.setdefault(origin, [])
        now = time.monotonic()
        while idle:
            exchange = idle.pop()
            if not exchange.closed and now - exchange.idle_since < IDLE_LIMIT_S:
                return exchange
            exchange.close()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(connect_until):
                address = origin.host
                if self.resolve is not None:
                    try:  # the guard may ask DNS: not on the loop
                        address = await loop.run_in_executor(None, self.resolve, origin.host,
                                                             origin.port)
                    except ValueError as e:  # the guard refused the address
                        raise AdapterError("address not allowed") from e
                tls: dict[str, Any] = {}
                if origin.scheme == "https":
                    tls = {"ssl": self.ssl_context, "server_hostname": origin.host}
                _, exchange = await loop.create_connection(
                    lambda: _Exchange(self.max_answer_bytes, self.max_header_bytes),
                    address, origin.port, **tls)
        except TimeoutError as e:
            raise AdapterTimeout("no answer before the deadline: could not connect "
                                 "in time") from e
        except ssl.SSLError as e:  # also a ValueError: before the guard's refusal
            raise AdapterError("could not connect: TLS failed (certificate)") from e
        except OSError as e:
            raise AdapterError("could not connect") from e
        return exchange

    def _release(self, origin: _Origin, exchange: _Exchange) -> None:
        idle = self._pools_here().idle.setdefault(origin, [])
        if exchange.reusable() and len(idle) < self.pool_size:
            exchange.idle_since = time.monotonic()
            idle.append(exchange)
        else:
            exchange.close()

    async def aclose(self) -> None:
        """Close this loop's idle connections (closed when this returns)."""
        pools = self._pools.pop(asyncio.get_running_loop(), None)
        for idle in (pools.idle.values() if pools else ()):
            for exchange in idle:
                exchange.close()
        await asyncio.sleep(0)  # an aborted transport lets go of its socket on the next turn
