"""The benchmarks' own services: a spare port, a Redis server of its own (never
the machine's shared one), a PostgreSQL schema of its own, kits made to fail,
and tidying up after a run (``soak.py``, ``memory_probe.py``, ``audit.py``,
``fanout.py``)."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


def tidy(redis_server: RedisServer, schema: PostgresSchema, work: Path) -> None:
    """No Redis server, schema or directory of this run left behind."""
    redis_server.stop()
    schema.drop()
    shutil.rmtree(work, ignore_errors=True)


