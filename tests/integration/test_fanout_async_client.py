"""The fan-out's event-loop client (``adapters.aio``) over real sockets on loopback:
the deadline holds while bytes drip, answers are capped, connections are reused
only when that is safe, the resolver decides where each new connection goes
while Host, SNI and the certificate check keep the registered name."""

from __future__ import annotations

import asyncio
import datetime
import gc
import socket
import ssl
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from support.fault_server import FaultServer

from adapters.aio import AsyncOutboundClient
from adapters.base import AdapterError, AdapterTimeout, NotSent, Reply, Target
from federator.lookup.fanout import FanOut

pytestmark = pytest.mark.integration

BODY = b'{"lookup_id": "L1"}'


@pytest.fixture
def server() -> Iterator[FaultServer]:
    served = FaultServer("ok")
    yield served
    served.stop()


def target(url: str) -> Target:
    return Target(id="t", url=url, timeout_ms=10000)


def post(client: AsyncOutboundClient, url: str, seconds: float, times: int = 1,
         headers: dict[str, str] | None = None) -> tuple[float, list[Reply]]:
    """``times`` calls one after another on one loop; the time they took."""

    async def calls() -> list[Reply]:
        replies = []
        for _ in range(times):
            replies.append(await client.post(target(url), "/lookup", BODY, headers or {},
                                             deadline=time.monotonic() + seconds))
        await client.aclose()
        return replies

    started = time.monotonic()
    replies = asyncio.run(calls())
    return time.monotonic() - started, replies


class RawServer:
    """Answers every connection with fixed bytes per request; counts connections."""

    def __init__(self, answers: list[bytes], close_after: bool = False) -> None:
        self.answers = answers
        self.close_after = close_after
        self.connections = 0
        #: each request as it arrived
        self.received: list[bytes] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                for answer in self.answers:
                    data = b""
                    while b"\r\n\r\n" not in data or not data.endswith(BODY):
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    if not data:
                        break
                    self.received.append(data)
                    conn.sendall(answer)
                    if self.close_after:
                        break

    def stop(self) -> None:
        self.sock.close()


def unclosed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What garbage collection finds left open now. Left to the collector, such a
    transport warns in whichever later test the collector happens to run."""
    found: list[str] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: found.append(repr(u.exc_value)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        gc.collect()
    return found


def test_a_dripping_answer_is_cut_off_at_the_deadline(server: FaultServer) -> None:
    server.fault = "drip"
    started = time.monotonic()
    with pytest.raises(AdapterTimeout, match="deadline"):
        post(AsyncOutboundClient(), server.url, 1.5)
    assert time.monotonic() - started < 5  # the drip lasts over a minute


def test_a_hanging_authority_times_out_at_the_deadline(server: FaultServer) -> None:
    server.fault = "hang"
    with pytest.raises(AdapterTimeout, match="no answer before the deadline"):
        post(AsyncOutboundClient(), server.url, 1.0)


def test_an_answer_over_the_cap_is_refused_while_streaming(server: FaultServer) -> None:
    server.fault = "huge"  # no Content-Length: only the streaming count stops it
    with pytest.raises(AdapterError, match="larger than 65536 bytes"):
        post(AsyncOutboundClient(max_answer_bytes=65536), server.url, 10)


def test_a_declared_length_over_the_cap_is_refused_before_the_body() -> None:
    raw = RawServer([b"HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n{"])
    try:
        with pytest.raises(AdapterError, match="larger than 1000 bytes"):
            post(AsyncOutboundClient(max_answer_bytes=1000), raw.url, 5)
    finally:
        raw.stop()


def test_a_whole_oversized_answer_in_one_read_is_refused_not_cut() -> None:
    """Chunked, so no length to refuse early, and small enough to arrive in one read:
    the parser finishes the message in the same call that passes the cap. Cut at the
    cap, its first bytes alone would be a valid answer."""
    answer = b'{"lookup_id": "x", "status": "no_match"}'
    chunks = b"%x\r\n%s\r\n" % (len(answer), answer) + b"400\r\n" + b" " * 1024 + b"\r\n"
    raw = RawServer([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks
                     + b"0\r\n\r\n"])
    try:
        with pytest.raises(AdapterError, match="larger than 100 bytes"):
            post(AsyncOutboundClient(max_answer_bytes=100), raw.url, 5)
    finally:
        raw.stop()


def concurrently(client: AsyncOutboundClient, url: str, seconds: list[float]
                 ) -> list[Reply | BaseException]:
    """One call per entry of ``seconds`` (its deadline from now), all at once."""

    async def run() -> list[Reply | BaseException]:
        now = time.monotonic()
        replies = await asyncio.gather(*(
            client.post(target(url), "/lookup", BODY, {}, deadline=now + s)
            for s in seconds), return_exceptions=True)
        await client.aclose()
        return replies

    return asyncio.run(run())


def test_calls_to_one_authority_wait_for_one_of_its_connections(server: FaultServer) -> None:
    server.fault = "slow:200"
    replies = concurrently(AsyncOutboundClient(max_connections=2), server.url, [10] * 6)
    assert [r.status for r in replies if isinstance(r, Reply)] == [200] * 6
    assert server.peak == 2


def test_a_call_still_waiting_for_a_connection_at_the_deadline_was_never_sent(
        server: FaultServer) -> None:
    server.fault = "slow:1500"  # holds the one connection past the second call's deadline
    first, second = concurrently(AsyncOutboundClient(max_connections=1), server.url,
                                 [10, 0.5])
    assert isinstance(first, Reply) and first.status == 200
    assert isinstance(second, NotSent) and "broker was busy" in second.detail
    assert server.requests == 1


def test_kept_alive_connections_are_reused_and_the_host_keeps_the_name(
        server: FaultServer) -> None:
    asked: list[tuple[str, int]] = []

    def resolve(host: str, port: int) -> str:
        asked.append((host, port))
        return "127.0.0.1"

    url = f"http://adapter.federator.test:{server.port}"
    _, replies = post(AsyncOutboundClient(resolve=resolve), url, 5, times=3)
    assert [r.status for r in replies] == [200, 200, 200]
    assert asked == [("adapter.federator.test", server.port)]  # one connection, checked once
    assert server.hosts == [f"adapter.federator.test:{server.port}"] * 3


def test_a_refused_address_is_that_authority_error(server: FaultServer) -> None:
    def refuse(host: str, port: int) -> str:
        raise ValueError(f"{host} resolves to 169.254.169.254")

    with pytest.raises(AdapterError, match="address not allowed"):
        post(AsyncOutboundClient(resolve=refuse), server.url, 5)
    assert server.requests == 0


def test_chunked_answers_are_read_whole() -> None:
    raw = RawServer([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"] * 2)
    try:
        _, replies = post(AsyncOutboundClient(), raw.url, 5, times=2)
        assert [r.body for r in replies] == [b"hello world"] * 2
        assert raw.connections == 1
    finally:
        raw.stop()


def test_an_answer_ended_by_closing_is_whole_and_the_connection_not_reused() -> None:
    raw = RawServer([b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{\"a\": 1}"],
                    close_after=True)
    try:
        _, replies = post(AsyncOutboundClient(), raw.url, 5, times=2)
        assert [r.body for r in replies] == [b'{"a": 1}'] * 2
        assert raw.connections == 2
    finally:
        raw.stop()


def test_a_connection_closed_mid_answer_is_a_connection_failure(server: FaultServer) -> None:
    server.fault = "close"
    with pytest.raises(AdapterError, match="connection failed"):
        post(AsyncOutboundClient(), server.url, 5)


def test_bytes_that_are_not_http_are_a_connection_failure() -> None:
    raw = RawServer([b"SSH-2.0-OpenSSH_9.2\r\n\r\n"])
    try:
        with pytest.raises(AdapterError, match="not an HTTP answer"):
            post(AsyncOutboundClient(), raw.url, 5)
    finally:
        raw.stop()


def test_a_line_break_in_a_header_is_refused_before_sending(server: FaultServer) -> None:
    with pytest.raises(AdapterError, match="line break"):
        post(AsyncOutboundClient(), server.url, 5,
             headers={"X-Request-Id": "abc\r\nX-Admin: yes"})
    assert server.requests == 0


def test_an_idle_connection_the_server_closed_is_not_used_again(
        server: FaultServer) -> None:
    client = AsyncOutboundClient()

    async def calls() -> list[int]:
        first = await client.post(target(server.url), "/lookup", BODY, {},
                                  deadline=time.monotonic() + 5)
        for idle in client._pools_here().idle.values():
            for exchange in idle:
                assert exchange.transport is not None
                exchange.transport.abort()  # as an authority's idle time-out would
        await asyncio.sleep(0.05)
        second = await client.post(target(server.url), "/lookup", BODY, {},
                                   deadline=time.monotonic() + 5)
        await client.aclose()
        return [first.status, second.status]

    assert asyncio.run(calls()) == [200, 200]
    assert server.requests == 2


# -- TLS: the registered name is checked against the certificate ---------------------

def _certificate(tmp: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[FaultServer, Path]]:
    cert, key = _certificate(tmp_path, "adapter.federator.test")
    served = FaultServer("ok")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    served.server.socket = context.wrap_socket(served.server.socket, server_side=True)
    yield served, cert
    served.stop()


def test_https_checks_the_registered_name_not_the_address(
        tls_server: tuple[FaultServer, Path]) -> None:
    server, cert = tls_server
    trusting = ssl.create_default_context(cafile=str(cert))
    client = AsyncOutboundClient(resolve=lambda host, port: "127.0.0.1",
                                 ssl_context=trusting)
    _, [reply] = post(client, f"https://adapter.federator.test:{server.port}", 5)
    assert reply.status == 200
    assert server.hosts == [f"adapter.federator.test:{server.port}"]
    # the same certificate does not vouch for another name at the same address
    other = AsyncOutboundClient(resolve=lambda host, port: "127.0.0.1",
                                ssl_context=trusting)
    with pytest.raises(AdapterError, match="could not connect"):
        post(other, f"https://other.federator.test:{server.port}", 5)


def test_a_tls_connection_is_closed_without_waiting_for_the_authority(
        tls_server: tuple[FaultServer, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Closing a TLS connection sends no close_notify to wait on: an authority slow
    to read it (a busy machine, or a hanging one) would keep the socket open past
    the loop's end."""
    server, cert = tls_server
    answer_one = server.handler.handle_one_request

    def then_silent(handler: object) -> None:
        if server.requests:  # answered once: reads nothing more until stopped
            server.stopping.wait()
        answer_one(handler)

    monkeypatch.setattr(server.handler, "handle_one_request", then_silent)
    client = AsyncOutboundClient(resolve=lambda host, port: "127.0.0.1",
                                 ssl_context=ssl.create_default_context(cafile=str(cert)))
    _, [reply] = post(client, f"https://adapter.federator.test:{server.port}", 5)
    assert reply.status == 200
    assert unclosed(monkeypatch) == []


def test_a_call_still_out_when_the_fan_out_shuts_down_closes_its_connection(
        server: FaultServer, monkeypatch: pytest.MonkeyPatch) -> None:
    server.fault = "hang"
    fanout, client = FanOut(1), AsyncOutboundClient()
    fanout.on_shutdown(client.aclose)
    call = asyncio.run_coroutine_threadsafe(client.post(
        target(server.url), "/lookup", BODY, {}, deadline=time.monotonic() + 30),
        fanout.loop())
    limit = time.monotonic() + 10
    while not server.requests and time.monotonic() < limit:
        time.sleep(0.01)
    assert server.requests == 1  # the call is out
    fanout.shutdown()
    assert call.cancelled()
    del call
    assert unclosed(monkeypatch) == []



def test_each_endpoint_gets_its_own_request_line_and_host_however_often_called() -> None:
    """The request line and fixed headers are worked out once per endpoint
    (``adapters.aio._request_head``): two endpoints of one server with other
    base paths, each called twice, each get theirs, and every call its own
    length and headers."""
    answer = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
              b"Content-Length: 2\r\n\r\n{}")
    server = RawServer([answer] * 4)
    url = server.url

    async def calls() -> None:
        client = AsyncOutboundClient(user_agent="federator/unit")
        for base, tag in [("/one/", "a"), ("/two/deeper", "b")] * 2:
            reply = await client.post(target(url + base), "/lookup", BODY, {"X-Tag": tag},
                                      deadline=time.monotonic() + 5)
            assert reply.status == 200
        await client.aclose()

    try:
        asyncio.run(calls())
    finally:
        server.stop()
    expected = [(b"POST /one/lookup HTTP/1.1", b"a"),
                (b"POST /two/deeper/lookup HTTP/1.1", b"b")] * 2
    assert len(server.received) == 4
    for request, (line, tag) in zip(server.received, expected, strict=True):
        lines = request.split(b"\r\n\r\n")[0].split(b"\r\n")
        assert lines[0] == line
        assert f"Host: {url.removeprefix('http://')}".encode() in lines
        assert b"User-Agent: federator/unit" in lines
        assert f"Content-Length: {len(BODY)}".encode() in lines
        assert b"X-Tag: " + tag in lines
