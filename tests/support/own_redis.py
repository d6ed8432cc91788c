"""A redis-server of a test's own, to stop and start under a running broker."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from federator.config import Settings
from federator.demo.federation import Federation, start_federation


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
    """A redis-server of the test's own, on a free port, to stop and start again."""

    def __init__(self, directory: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.directory = directory
        self.process = _redis_server(self.port, directory)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)

    def start(self) -> None:
        self.process = _redis_server(self.port, self.directory)


@contextlib.contextmanager
def on_own_redis(directory: Path) -> Iterator[tuple[Federation, OwnRedis]]:
    """A federation whose broker keeps its shared state in a Redis of its own."""
    redis = OwnRedis(directory)
    fed = start_federation(directory / "demo", base=Settings(
        lookups_per_minute=10000, lookups_per_day=100000, redis_url=redis.url))
    try:
        yield fed, redis
    finally:
        fed.stop()
        redis.process.kill()
        redis.process.wait(timeout=10)


NEEDS_REDIS = pytest.mark.skipif(shutil.which("redis-server") is None,
                                 reason="needs redis-server")


