"""``federator serve`` processes for the production tests (test_prod_two_brokers.py,
test_prod_tls.py): started as an operator starts them, waited for on /readyz."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

FEDERATOR = shutil.which("federator", path=str(Path(sys.executable).parent)) or "federator"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def start_broker(env: dict[str, str], log: Path, *, workers: int = 2,
                 allow_development: bool = False, port: int | None = None
                 ) -> tuple[subprocess.Popen[bytes], str]:
    """``federator serve`` on a loopback port; its stdout and stderr go to ``log``."""
    port = port or free_port()
    command = [FEDERATOR, "serve", "--bind", f"127.0.0.1:{port}", "--workers", str(workers)]
    if allow_development:
        command.append("--allow-development")
    with log.open("wb") as fh:
        process = subprocess.Popen(command, env=env, stdout=fh, stderr=fh)
    return process, f"http://127.0.0.1:{port}"


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path,
               timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"broker exited: {log.read_text()[-2000:]}")
        try:
            if requests.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.3)
    pytest.fail(f"broker at {url} did not become ready: {log.read_text()[-2000:]}")


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
