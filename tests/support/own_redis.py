"""A redis-server of a test's own, to stop and start under a running broker.

``OwnRedis(directory, relayed=True)`` puts a TCP relay (``soak_services.Relay``)
between the broker and that server which does not pass the server's close on: the broker's pooled
connections hear nothing when Redis stops, and get a reset when they are next
used, as when Redis on another host (or in a container) is restarted. Without
the relay the close reaches the broker at once (loopback), and redis-py drops
such connections when it takes them from its pool.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from federator.config import Settings
from federator.demo.federation import Federation, start_federation
from support.budget import UNLIMITED

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from soak_services import Relay  # the soak's --redis-relay uses it too


def _redis_server(port: int, directory: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", str(port),
         "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(directory)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    limit = time.monotonic() + 10
    while time.monotonic() < limit:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("redis-server did not start")


class OwnRedis:
    """A redis-server of the test's own, on a free port, to stop and start again;
    ``relayed``: reached through a :class:`Relay` (``url`` is the relay's)."""

    def __init__(self, directory: Path, *, relayed: bool = False) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.directory = directory
        self.process = _redis_server(self.port, directory)
        self.relay = Relay(self.port) if relayed else None

    @property
    def url(self) -> str:
        port = self.relay.port if self.relay is not None else self.port
        return f"redis://127.0.0.1:{port}/0"

    def answers(self) -> bool:
        """The server itself (not the relay) answers PING."""
        with contextlib.suppress(OSError), socket.create_connection(
                ("127.0.0.1", self.port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
        return False

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)

    def start(self) -> None:
        self.process = _redis_server(self.port, self.directory)


@contextlib.contextmanager
def on_own_redis(directory: Path, *, relayed: bool = False, lookups_per_minute: int = 10000
                 ) -> Iterator[tuple[Federation, OwnRedis]]:
    """A federation whose broker keeps its shared state in a Redis of its own."""
    redis = OwnRedis(directory, relayed=relayed)
    fed = start_federation(directory / "demo", base=Settings(
        **{**UNLIMITED, "lookups_per_minute": lookups_per_minute}, redis_url=redis.url))
    try:
        yield fed, redis
    finally:
        fed.stop()
        if redis.relay is not None:
            redis.relay.close()
        redis.process.kill()
        redis.process.wait(timeout=10)


NEEDS_REDIS = pytest.mark.skipif(shutil.which("redis-server") is None,
                                 reason="needs redis-server")


