"""The kit trusts only what it should, over real loopback HTTP: the broker's keys
come from ``jwks_url`` itself (no redirect followed, no proxy taken from the
environment), a token from another issuer is refused, and a kit configured to
fetch its keys over plain http, or without the broker's issuer, does not start."""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from werkzeug.wrappers import Response

from adapters.kit.app import create_kit_app
from adapters.protocol import encode_body, sign_request

pytestmark = pytest.mark.integration

AUTHORITY = "test-cs"  # as in conftest.py
ISSUER = "federator-test-broker"

REPO = Path(__file__).resolve().parents[3]


def signed_lookup(url: str, key: Any, body: dict[str, Any], issuer: str = ISSUER
                  ) -> requests.Response:
    raw = encode_body(body)
    token = sign_request(raw, key, issuer=issuer, audience=AUTHORITY, now=time.time())
    with requests.Session() as client:
        client.trust_env = False  # this test's own calls go straight to the kit
        return client.post(f"{url}/lookup", data=raw, timeout=10,
                           headers={"Authorization": f"Bearer {token}"})


def test_a_redirect_from_the_jwks_url_is_not_followed(
        kit_settings, jwks_server, serve, broker_key, make_body):
    # the keys' address answers with a redirect to a key set (here the real one)
    redirector = serve(lambda environ, start_response: Response(
        status=302, headers={"Location": jwks_server.jwks_url})(environ, start_response))
    settings = dataclasses.replace(kit_settings, jwks_url=f"{redirector.url}/jwks.json")
    kit = serve(create_kit_app(settings))
    r = signed_lookup(kit.url, broker_key, make_body())
    assert r.status_code == 503, r.text
    assert r.json() == {"error": "cannot verify requests: broker keys unavailable"}
    assert jwks_server.fetches == 0  # the redirect's target was never asked


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_proxy_variables_in_the_environment_are_ignored(
        kit_settings, jwks_server, serve, broker_key, make_body, monkeypatch):
    nowhere = f"http://127.0.0.1:{closed_port()}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy"):
        monkeypatch.setenv(name, nowhere)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    kit = serve(create_kit_app(kit_settings))
    r = signed_lookup(kit.url, broker_key, make_body())
    assert r.status_code == 200, r.text
    assert jwks_server.fetches == 1  # fetched straight from the JWKS server


def test_a_token_from_another_issuer_is_refused(kit_url, broker_key, make_body):
    r = signed_lookup(kit_url, broker_key, make_body(), issuer="another-broker")
    assert r.status_code == 401
    assert r.json() == {"error": "wrong issuer"}
    assert signed_lookup(kit_url, broker_key, make_body()).status_code == 200


@pytest.mark.parametrize(("settings", "message"), [
    ('jwks_url = "http://broker.example/.well-known/jwks.json"\n'
     'broker_issuer = "federator"\n', "jwks_url: must be an https:// URL"),
    ('jwks_url = "https://broker.example/.well-known/jwks.json"\n', "broker_issuer: missing"),
])
def test_the_kit_does_not_start_without_trust_settings_it_can_rely_on(
        tmp_path, kit_csv, settings, message):
    config = tmp_path / "kit.toml"
    config.write_text(f'authority_id = "test-cs"\nname = "Test"\n{settings}'
                      f'source = "csv"\ncsv_path = "{kit_csv.name}"\n', encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "adapters.kit", "serve", "--config", str(config),
         "--port", str(closed_port())],
        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert message in result.stderr

