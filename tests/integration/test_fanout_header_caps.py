"""Both HTTP clients cap an answer's status line and headers (16 KiB), over real
sockets on loopback: an endless header, or thousands of small ones, is refused as
it arrives with a named reason, while an answer with large but allowed headers
still reads."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from adapters.aio import AsyncOutboundClient
from adapters.base import MAX_HEADER_BYTES, AdapterError, HeadersTooLarge, OutboundClient, Target

pytestmark = pytest.mark.integration

CAP = f"answer headers larger than {MAX_HEADER_BYTES} bytes"


class HeadServer:
    """Reads a request, then writes ``send(conn)``; counts the bytes it got out."""

    def __init__(self, send: Callable[[socket.socket], None]) -> None:
        self.send = send
        self.sent = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                self.send(conn)
            except OSError:
                pass

    def stop(self) -> None:
        self.sock.close()


def endless(conn: socket.socket) -> None:
    """One header whose value never ends: 256 MiB unless the client hangs up."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Endless: ")
    for _ in range(4096):
        conn.sendall(b"a" * 65536)


def many(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\n" + b"".join(
        b"X-%d: %s\r\n" % (i, b"b" * 40) for i in range(5000)) + b"Content-Length: 2\r\n\r\n{}")


def large_but_allowed(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Big: " + b"c" * 15000
                 + b"\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[socket.socket], None]], HeadServer]]:
    servers: list[HeadServer] = []

    def start(send: Callable[[socket.socket], None]) -> HeadServer:
        servers.append(HeadServer(send))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def threaded(url: str) -> int:
    client = OutboundClient()
    try:
        return client.post(Target("t", url, 10000), "/lookup", b"{}", {},
                           deadline=time.monotonic() + 10).status
    finally:
        client.close()


def on_loop(url: str) -> int:
    client = AsyncOutboundClient()

    async def call() -> int:
        reply = await client.post(Target("t", url, 10000), "/lookup", b"{}", {},
                                  deadline=time.monotonic() + 10)
        await client.aclose()
        return reply.status

    return asyncio.run(call())


CLIENTS = {"urllib3": threaded, "event-loop": on_loop}


@pytest.mark.parametrize("client", list(CLIENTS))
def test_an_endless_header_is_refused_with_a_named_reason(serve, client: str) -> None:
    server = serve(endless)
    with pytest.raises(HeadersTooLarge, match=CAP) as refused:
        CLIENTS[client](server.url)
    assert refused.value.outcome == "error"  # that authority's error, nothing more


@pytest.mark.parametrize("client", list(CLIENTS))
def test_thousands_of_small_headers_are_refused(serve, client: str) -> None:
    server = serve(many)
    with pytest.raises(AdapterError, match="headers"):
        CLIENTS[client](server.url)


@pytest.mark.parametrize("client", list(CLIENTS))
def test_headers_under_the_cap_still_read(serve, client: str) -> None:
    assert CLIENTS[client](serve(large_but_allowed).url) == 200


def test_the_event_loop_stays_free_while_an_endless_header_arrives(serve) -> None:
    """Other calls on the same loop finish while one authority streams its header."""
    bad, good = serve(endless), serve(large_but_allowed)
    client = AsyncOutboundClient()

    async def both() -> list[object]:
        deadline = time.monotonic() + 10
        calls = [client.post(Target("bad", bad.url, 10000), "/lookup", b"{}", {},
                             deadline=deadline)]
        calls += [client.post(Target(f"g{i}", good.url, 10000), "/lookup", b"{}", {},
                              deadline=deadline) for i in range(20)]
        results = await asyncio.gather(*calls, return_exceptions=True)
        await client.aclose()
        return results

    first, *rest = asyncio.run(both())
    assert isinstance(first, HeadersTooLarge)
    assert all(getattr(r, "status", None) == 200 for r in rest), rest
