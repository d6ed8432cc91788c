"""Serving the kit: waitress, so that a slow client holds a socket and never a thread.

waitress reads every connection on one event loop and gives a request to a
worker thread only once all of it (headers and body) has arrived. Under a
thread-per-connection server (gunicorn's gthread workers, cheroot) each
connection trickling its headers holds a thread until it finishes, so as many
trickling clients as there are threads stop the kit answering. Measured on
loopback, one header byte a second on each connection, then ``/health``:

    gunicorn gthread, 1 worker x 8 threads   8 connections: timed out (5 s); 7: 8-12 ms
    cheroot, 10 threads                      20 connections: timed out (5 s)
    waitress, 4 threads                      200 connections: 6-13 ms

waitress's own timeout only closes idle connections (``channel_timeout``), and
a byte a second is not idle. :class:`KitServer` also closes a connection
whose request has not fully arrived within ``request_timeout_s`` of its first
byte, checked every second. The rest is waitress's settings: headers at most
``max_header_bytes``, a body at most the kit's ``max_body_bytes`` (413 before
the app reads it), at most ``connection_limit`` connections open (beyond that
it stops accepting until some close).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher


@dataclass(frozen=True)
class ServeLimits:
    #: threads running the app: only complete requests reach them
    threads: int = 8
    #: connections open at once (each costs a socket and a small buffer)
    connection_limit: int = 1000
    #: the whole request (headers and body) must arrive within this from its first byte
    request_timeout_s: float = 10.0
    #: an idle keep-alive connection is closed after this (the broker reuses one
    #: idle for under 4 s: adapters/aio.py IDLE_LIMIT_S)
    idle_timeout_s: float = 10.0
    max_header_bytes: int = 16384

    def __post_init__(self) -> None:
        for name in ("threads", "connection_limit", "max_header_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be at least 1")
        for name in ("request_timeout_s", "idle_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be positive")


class KitChannel(HTTPChannel):  # type: ignore[misc]
    """A connection that remembers when its current request began to arrive."""

    request_began = 0.0

    def received(self, data: bytes) -> bool:
        if self.request is None and data:
            self.request_began = time.monotonic()
        return bool(super().received(data))


class KitServer(TcpWSGIServer):  # type: ignore[misc]
    """waitress, closing connections whose request takes too long to arrive."""

    channel_class = KitChannel
    request_timeout_s = ServeLimits.request_timeout_s

    def maintenance(self, now: float) -> None:
        super().maintenance(now)  # idle connections
        cutoff = time.monotonic() - self.request_timeout_s
        for channel in list(self.active_channels.values()):
            if channel.request is not None and channel.request_began < cutoff:
                channel.will_close = True  # the event loop closes it next


def make_server(app: Any, host: str, port: int, *, max_body_bytes: int,
                limits: ServeLimits | None = None) -> KitServer:
    """The kit's server, bound and listening; ``run()`` serves until interrupted."""
    limits = limits or ServeLimits()
    adj = Adjustments(
        host=host, port=port, threads=limits.threads,
        connection_limit=limits.connection_limit,
        channel_timeout=max(1, round(limits.idle_timeout_s)),
        cleanup_interval=1, max_request_header_size=limits.max_header_bytes,
        max_request_body_size=max_body_bytes, ident="federator-kit",
        expose_tracebacks=False)
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(adj.threads)
    server = KitServer(app, map={}, dispatcher=dispatcher, adj=adj, sockinfo=adj.listen[0])
    server.request_timeout_s = limits.request_timeout_s
    return server
