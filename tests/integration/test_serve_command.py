"""`federator serve` runs the broker under gunicorn, and refuses unsafe production settings."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

FEDERATOR = shutil.which("federator", path=str(Path(sys.executable).parent)) or "federator"
pytestmark = pytest.mark.integration


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDERATOR_")}
    env.update(FEDERATOR_INSTANCE_DIR=str(tmp_path), **extra)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_runs_gunicorn_and_answers_health(tmp_path: Path) -> None:
    env = _env(tmp_path, FEDERATOR_ENV="development")
    subprocess.run([FEDERATOR, "db", "upgrade"], env=env, check=True, timeout=60,
                   capture_output=True)
    port = _free_port()
    process = subprocess.Popen([FEDERATOR, "serve", "--bind", f"127.0.0.1:{port}",
                                "--workers", "2", "--allow-development"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.3)
        else:
            pytest.fail("federator serve did not answer")
        assert response.status_code == 200
        assert response.json()["checks"] == {"database": True, "shared_state": True}
        assert response.headers["X-Request-Id"]
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_serve_refuses_production_without_secrets(tmp_path: Path) -> None:
    result = subprocess.run([FEDERATOR, "serve"], env=_env(tmp_path, FEDERATOR_ENV="production"),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "FEDERATOR_SECRET_KEY" in result.stderr


def test_serve_refuses_development_without_the_flag(tmp_path: Path) -> None:
    result = subprocess.run([FEDERATOR, "serve", "--bind", f"127.0.0.1:{_free_port()}"],
                            env=_env(tmp_path, FEDERATOR_ENV="development"),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "FEDERATOR_ENV is development" in result.stderr
    assert "--allow-development" in result.stderr


def test_serve_refuses_predictable_keys_and_a_plain_http_public_url(tmp_path: Path) -> None:
    env = _env(tmp_path, FEDERATOR_ENV="production", FEDERATOR_SECRET_KEY="a" * 32,
               FEDERATOR_AUDIT_KEY="a" * 32, FEDERATOR_OIDC_ISSUER="https://idp.example",
               FEDERATOR_SIGNING_KEY_FILE=str(tmp_path / "k.jwk.json"),
               FEDERATOR_PUBLIC_URL="http://federator.example")
    result = subprocess.run([FEDERATOR, "serve"], env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0
    assert "FEDERATOR_SECRET_KEY is too predictable" in result.stderr
    assert "FEDERATOR_AUDIT_KEY is too predictable" in result.stderr
    assert "FEDERATOR_PUBLIC_URL must be https" in result.stderr
