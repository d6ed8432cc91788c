"""Interoperability: the broker's web sign-in against an independent, certified
OpenID provider (npm ``oidc-provider``, started here on loopback with its own
keys and a test client), driven by a real HTTP client that follows redirects and
submits the provider's own login and consent forms. Not a mock."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from flask import Flask
from support.web_client import session_record

from federator import create_app
from federator.config import Settings
from federator.demo.serving import ServedApp, bind

pytestmark = pytest.mark.integration

HARNESS = Path(__file__).parent / "oidc_provider"
REQUIRED = os.environ.get("FEDERATOR_REQUIRE_SERVICES") == "1"
CLIENT_ID, CLIENT_SECRET = "federator-interop", "interop-secret-" + "x" * 24
ACCOUNTS = {
    "sam": {"name": "Sam Patel", "roles": ["practitioner"], "organisation": "Leeds City Council",
            "job_title": "Social worker", "email": "sam@example.gov.uk"},
    "nobody": {"name": "Ann Other", "roles": ["visitor"], "organisation": "Leeds City Council"},
}


@dataclass
class Interop:
    issuer: str
    broker: ServedApp
    app: Flask


class Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "fields": {}})
        elif tag == "input" and self.forms and a.get("name"):
            self.forms[-1]["fields"][a["name"]] = a.get("value", "")


def submit_only_form(http: requests.Session, page: requests.Response, **values: str
                     ) -> requests.Response:
    parser = Forms()
    parser.feed(page.text)
    assert len(parser.forms) == 1, page.text[:500]
    [form] = parser.forms
    return http.post(urljoin(page.url, form["action"] or page.url),
                     data={**form["fields"], **values}, timeout=15)


def _node() -> str:
    node = shutil.which("node")
    problem = None
    if node is None:
        problem = "node is not installed"
    elif not (HARNESS / "node_modules" / "oidc-provider").is_dir():
        problem = f"run npm install in {HARNESS} (scripts/test does)"
    if problem:
        if REQUIRED:
            pytest.fail(f"the oidc-provider interop test needs Node.js: {problem}")
        pytest.skip(problem)
    assert node is not None
    return node


@pytest.fixture
def interop(tmp_path: Path) -> Iterator[Interop]:
    node = _node()
    broker = bind(0)
    config = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
              "redirect_uris": [f"{broker.url}/auth/callback"],
              "post_logout_redirect_uris": [f"{broker.url}/signed-out"], "accounts": ACCOUNTS}
    process = subprocess.Popen([node, str(HARNESS / "provider.mjs"), json.dumps(config)],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            pytest.fail(f"oidc-provider did not start (exit {process.wait(timeout=5)})")
        issuer = json.loads(line)["issuer"]
        app = create_app(Settings(
            env="development", instance_dir=tmp_path, public_url=broker.url,
            oidc_issuer=issuer, oidc_client_id=CLIENT_ID, oidc_client_secret=CLIENT_SECRET,
            oidc_audience=CLIENT_ID, secret_key="s" * 40, audit_key="a" * 40,
        ).checked(), migrate=True)
        app.config["FEDERATOR_TEST_URL"] = broker.url
        broker.start(app)
        yield Interop(issuer, broker, app)
        broker.stop()
        app.extensions["federator"].fanout.shutdown()
        app.extensions["federator"].engine.dispose()
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def _session(app: Flask, http: requests.Session) -> dict:
    return session_record(app, http.cookies.get(app.config["SESSION_COOKIE_NAME"]))


def sign_in(interop: Interop, http: requests.Session, login: str) -> requests.Response:
    page = http.get(f"{interop.broker.url}/sign-in", params={"next": "/healthz"}, timeout=15)
    first = urlsplit(page.history[0].headers["Location"])
    assert first.netloc == urlsplit(interop.issuer).netloc
    query = parse_qs(first.query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["state"] and query["nonce"]
    consent = submit_only_form(http, page, login=login, password="any")
    return submit_only_form(http, consent)


def test_web_sign_in_against_oidc_provider(interop: Interop) -> None:
    with requests.Session() as http:
        landed = sign_in(interop, http, "sam")
        assert landed.status_code == 200, landed.text[:500]
        assert landed.url == f"{interop.broker.url}/healthz"
        principal = _session(interop.app, http)["principal"]
        assert principal["id"] == "sam"
        assert principal["roles"] == ["practitioner"]
        assert principal["organisation"] == "Leeds City Council"
        assert principal["job_title"] == "Social worker"
        trail = interop.app.extensions["federator"].trail
        assert trail.records(event="auth.signed_in")[-1]["actor_id"] == "sam"


def test_sign_out_ends_the_session_at_oidc_provider_too(interop: Interop) -> None:
    with requests.Session() as http:
        sign_in(interop, http, "sam")
        token = _csrf_token(interop.app, http)
        confirm = http.post(f"{interop.broker.url}/sign-out", data={"csrf_token": token},
                            timeout=15)
        assert urlsplit(confirm.url).netloc == urlsplit(interop.issuer).netloc
        done = submit_only_form(http, confirm, logout="yes")
        assert done.url.startswith(f"{interop.broker.url}/signed-out")
        assert "principal" not in _session(interop.app, http)
        # The provider's session is gone too: signing in asks for the login again.
        again = http.get(f"{interop.broker.url}/sign-in", timeout=15)
        assert 'name="login"' in again.text


def test_account_without_a_role_is_refused_clearly(interop: Interop) -> None:
    with requests.Session() as http:
        refused = sign_in(interop, http, "nobody")
        assert refused.status_code == 403
        assert "no Federator role" in refused.text
        assert "principal" not in _session(interop.app, http)


def _csrf_token(app: Flask, http: requests.Session) -> str:
    """The form token of a page this browser is shown (the lookup form)."""
    page = http.get(f"{app.config['FEDERATOR_TEST_URL']}/lookups/new", timeout=15,
                    headers={"Accept": "text/html"})
    assert page.status_code == 200, page.text[:300]
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text)
    assert found, page.text[:300]
    return found.group(1)
