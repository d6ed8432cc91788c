"""Trickling clients cannot starve the kit as an authority runs it
(``python -m adapters.kit serve``, a real process on loopback): with two dozen
connections each sending a header byte a second it still answers ``/health``
and a signed ``/lookup``; a request that takes too long to arrive, in its
headers or its body, is cut off."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from adapters.protocol import encode_body, sign_request

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
SLOW_CLIENTS = 24


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def kit(tmp_path, jwks_server, kit_csv) -> Iterator[str]:
    config = tmp_path / "kit.toml"
    config.write_text(
        'authority_id = "test-cs"\nname = "Test Children\'s Services"\n'
        f'jwks_url = "{jwks_server.jwks_url}"\nbroker_issuer = "federator-test-broker"\n'
        f'source = "csv"\ncsv_path = "{kit_csv.name}"\n', encoding="utf-8")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "adapters.kit", "serve", "--config", str(config),
         "--port", str(port), "--request-timeout", "3"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                requests.get(f"{url}/health", timeout=1)
                break
            except requests.ConnectionError:
                if proc.poll() is not None:
                    break
                time.sleep(0.1)
        else:
            pytest.fail("the kit did not start")
        if proc.poll() is not None:
            pytest.fail(f"the kit stopped:\n{proc.stdout.read().decode() if proc.stdout else ''}")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


class Trickler:
    """Connections that each send one byte a second of a request that never ends."""

    def __init__(self, port: int, count: int, head: bytes) -> None:
        self.stop = threading.Event()
        self.sent = [0] * count
        self.sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
        self.thread = threading.Thread(target=self._trickle, args=(head,), daemon=True)
        self.thread.start()

    def _trickle(self, head: bytes) -> None:
        for byte in head:
            for i, sock in enumerate(self.sockets):
                try:
                    sock.send(bytes([byte]))
                    self.sent[i] += 1
                except OSError:
                    pass  # cut off by the kit
            if self.stop.wait(1.0):
                return

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        for sock in self.sockets:
            sock.close()


HEAD = b"POST /lookup HTTP/1.1\r\nHost: kit\r\nX-Trickle: " + b"a" * 600


def test_slow_connections_do_not_stop_the_kit_answering(kit, broker_key, make_body):
    port = int(kit.rsplit(":", 1)[1])
    slow = Trickler(port, SLOW_CLIENTS, HEAD)
    try:
        while min(slow.sent) < 2:  # every connection accepted and part-way through
            time.sleep(0.1)
        health = requests.get(f"{kit}/health", timeout=5)
        assert health.status_code == 200
        assert health.headers["Server"] == "federator-kit"
        body = encode_body(make_body())
        token = sign_request(body, broker_key, issuer="federator-test-broker",
                             audience="test-cs")
        answer = requests.post(f"{kit}/lookup", data=body, timeout=5,
                               headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "match"
    finally:
        slow.close()


def cut_off(port: int, first: bytes, then: bytes) -> bool:
    """Send ``first``, then ``then`` a byte a second: True when the kit closes the
    connection before it is all sent."""
    sock = socket.create_connection(("127.0.0.1", port))
    try:
        sock.sendall(first)
        sock.settimeout(1.0)
        for byte in then:
            try:
                sock.send(bytes([byte]))
                if sock.recv(1024) == b"":
                    return True
            except TimeoutError:
                continue  # nothing from the kit yet: go on trickling
            except OSError:
                return True
        return False
    finally:
        sock.close()


def test_a_request_that_takes_too_long_to_arrive_is_cut_off(kit):
    port = int(kit.rsplit(":", 1)[1])
    # headers that never finish (the kit was started with --request-timeout 3)
    assert cut_off(port, b"GET /health HTTP/1.1\r\n", b"X-Slow: " + b"a" * 30)
    # headers at once, then a body a byte a second
    head = b"POST /lookup HTTP/1.1\r\nHost: kit\r\nContent-Length: 30\r\n\r\n"
    assert cut_off(port, head, b"{" + b" " * 29)
    assert requests.get(f"{kit}/health", timeout=5).status_code == 200
