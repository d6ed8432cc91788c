"""``python -m adapters.kit serve``: the kit under waitress, as an authority runs it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from adapters.protocol import encode_body, sign_request

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(tmp_path, jwks_server, kit_csv):
    config = tmp_path / "kit.toml"
    config.write_text(
        'authority_id = "test-cs"\n'
        'name = "Test Children\'s Services"\n'
        f'jwks_url = "{jwks_server.jwks_url}"\n'
        'broker_issuer = "federator-test-broker"\n'
        'source = "csv"\n'
        f'csv_path = "{kit_csv.name}"\n',
        encoding="utf-8",
    )
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "adapters.kit", "serve", "--config", str(config),
         "--port", str(port), "--threads", "4"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                requests.get(f"{url}/health", timeout=1)
                break
            except requests.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read().decode() if proc.stdout else ""
                    pytest.fail(f"kit did not start:\n{out}")
                time.sleep(0.1)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


def test_serve_runs_under_waitress(served, broker_key, make_body):
    url, _ = served
    health = requests.get(f"{url}/health", timeout=5)
    assert health.json() == {"status": "ok", "protocol": "federator-lookup/1", "witness": "none",
                             "authority": "test-cs"}
    assert health.headers.get("Server") == "federator-kit"  # waitress, named for the kit
    body = encode_body(make_body())
    token = sign_request(body, broker_key, issuer="federator-test-broker", audience="test-cs")
    r = requests.post(f"{url}/lookup", data=body, timeout=10,
                      headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "match"


def test_serve_reports_a_bad_config(tmp_path):
    config = tmp_path / "kit.toml"
    config.write_text('name = "x"\n', encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "adapters.kit", "serve", "--config", str(config)],
        cwd=REPO, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode != 0
    assert "authority_id: missing" in result.stderr
