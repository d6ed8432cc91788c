"""The benchmarks' own services: a spare port, a Redis server of its own (never
the machine's shared one), a relay to it that hides its restarts from the
broker's pooled connections (``Relay``, also used by tests/integration/own_redis.py),
a PostgreSQL schema of its own, kits made to fail, and tidying up after a run
(``soak.py``, ``memory_probe.py``, ``audit.py``, ``fanout.py``)."""

from __future__ import annotations

import contextlib
import os
import random
import select
import shutil
import socket
import struct
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
import sqlalchemy
from sqlalchemy import text

POSTGRES_URL = os.environ.get("FEDERATOR_TEST_POSTGRES_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@dataclass
class PostgresSchema:
    """A new, empty schema: ``url`` points the broker at it; ``drop()`` removes it."""

    name: str
    url: str
    admin: sqlalchemy.Engine

    @classmethod
    def create(cls, prefix: str, base: str = POSTGRES_URL) -> PostgresSchema:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        admin = sqlalchemy.create_engine(base)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
        sep = "&" if "?" in base else "?"
        return cls(name, f"{base}{sep}options=-csearch_path%3D{name}", admin)

    def drop(self) -> None:
        with self.admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE'))
        self.admin.dispose()


def chaos(app: Callable[..., Any], rng: random.Random, fail_rate: float, hang_s: float
          ) -> Callable[..., Any]:
    """Wrap a kit: some calls answer 500, some hang for ``hang_s`` (past the deadline)."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") == "/lookup":
            roll = rng.random()
            if roll < fail_rate / 2:
                start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
                return [b"injected failure"]
            if roll < fail_rate:
                time.sleep(hang_s)
        return app(environ, start_response)

    return wrapped

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def wait_answering(self) -> float:
        """Wait until the server answers PING; when it first did (``time.monotonic()``)."""
        client = redis.Redis(port=self.port, socket_timeout=0.5, socket_connect_timeout=0.5,
                             retry=None)
        deadline = time.monotonic() + 10
        try:
            while time.monotonic() < deadline:
                try:
                    if client.ping():
                        return time.monotonic()
                except redis.RedisError:
                    time.sleep(0.01)
        finally:
            client.close()
        raise RuntimeError("redis-server does not answer PING")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


def _reset(sock: socket.socket) -> None:
    """Close with a reset (RST), not a FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class Relay:
    """Loopback TCP relay to ``target_port`` that keeps the near side open when the
    far side closes; the next bytes sent on it get a reset instead of an answer."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                near, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._pump, args=(near,), daemon=True).start()

    def _pump(self, near: socket.socket) -> None:
        try:
            far: socket.socket | None = socket.create_connection(
                ("127.0.0.1", self.target_port), timeout=1)
        except OSError:
            _reset(near)  # Redis is down: the broker's connection fails at once
            return
        try:
            while not self.stopping.is_set():
                watched = [near] if far is None else [near, far]
                for sock in select.select(watched, [], [], 0.2)[0]:
                    try:
                        data = sock.recv(65536)
                    except OSError:
                        data = b""
                    if sock is far:
                        if data:
                            near.sendall(data)
                        else:  # Redis went away: say nothing to the broker yet
                            far.close()
                            far = None
                    elif not data:
                        return
                    elif far is None:
                        _reset(near)
                        return
                    else:
                        far.sendall(data)
        except OSError:
            pass
        finally:
            if far is not None:
                far.close()
            near.close()

    def close(self) -> None:
        self.stopping.set()
        self.listener.close()


def tidy(redis_server: RedisServer, schema: PostgresSchema, work: Path) -> None:
    """No Redis server, schema or directory of this run left behind."""
    redis_server.stop()
    schema.drop()
    shutil.rmtree(work, ignore_errors=True)


