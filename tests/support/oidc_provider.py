"""An independent, certified OpenID provider (npm ``oidc-provider``, started on
loopback by ``tests/integration/oidc_provider/provider.mjs`` with its own keys),
the broker signed in to it, and a real HTTP client that follows redirects and
submits the provider's own login and consent forms. Not a mock.

``running_interop(tmp_path, **settings)`` starts both; ``sign_in`` signs a browser
in; ``api_access_token`` gets an RFC 9068 access token as a case system would
(its own authorization code flow with PKCE and a ``resource``);
``Interop.put_account`` changes an account at the provider.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pytest
import requests
from flask import Flask

from federator import create_app
from federator.config import Settings
from federator.demo.serving import ServedApp, bind

HARNESS = Path(__file__).resolve().parents[1] / "integration" / "oidc_provider"
REQUIRED = os.environ.get("FEDERATOR_REQUIRE_SERVICES") == "1"
CLIENT_ID, CLIENT_SECRET = "federator-interop", "interop-secret-" + "x" * 24
#: Case systems calling the API with their own tokens.
API_CLIENTS = {"case-system": "case-secret-" + "y" * 24, "other-system": "other-" + "z" * 24}
API_RESOURCE = "urn:federator:api"
API_REDIRECT = "http://127.0.0.1:9/callback"  # never followed: the code is read from it
ACCOUNTS = {
    "sam": {"name": "Sam Patel", "roles": ["practitioner"], "organisation": "Leeds City Council",
            "job_title": "Social worker", "email": "sam@example.gov.uk",
            "acr": "urn:test:aal1"},
    "kim": {"name": "Kim Lee", "roles": ["practitioner"], "organisation": "Leeds City Council",
            "job_title": "Health visitor", "email": "kim@example.nhs.uk",
            "acr": "urn:test:aal3"},
    "ray": {"name": "Ray Moss", "roles": ["practitioner"], "organisation": "Leeds City Council",
            "job_title": "School nurse"},  # the provider reports no acr for Ray
    "nobody": {"name": "Ann Other", "roles": ["visitor"], "organisation": "Leeds City Council"},
}


@dataclass
class Interop:
    issuer: str
    broker: ServedApp
    app: Flask

    def put_account(self, login: str, claims: dict[str, Any] | None) -> None:
        """Change (or, with None, delete) an account at the provider."""
        answer = requests.put(f"{self.issuer}/_test/accounts/{login}",
                              data=json.dumps(claims), timeout=10)
        assert answer.status_code == 204

    def cookie(self, http: requests.Session) -> str | None:
        return http.cookies.get(self.app.config["SESSION_COOKIE_NAME"])


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


def submit_only_form(http: requests.Session, page: requests.Response, *,
                     allow_redirects: bool = True, **values: str) -> requests.Response:
    parser = Forms()
    parser.feed(page.text)
    assert len(parser.forms) == 1, page.text[:500]
    [form] = parser.forms
    return http.post(urljoin(page.url, form["action"] or page.url),
                     data={**form["fields"], **values}, timeout=15,
                     allow_redirects=allow_redirects)


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


def provider_config(broker_url: str, *, accounts: dict[str, Any] | None = None,
                    tls: dict[str, str] | None = None) -> dict[str, Any]:
    """provider.mjs's configuration: the broker's client, the case systems' API
    clients, ``accounts`` (default ``ACCOUNTS``) and, for https, ``tls``
    (``{"cert": PEM file, "key": PEM file}``)."""
    config = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
              "redirect_uris": [f"{broker_url}/auth/callback"],
              "post_logout_redirect_uris": [f"{broker_url}/signed-out"],
              "accounts": ACCOUNTS if accounts is None else accounts,
              "api_clients": [{"client_id": c, "client_secret": s,
                               "redirect_uris": [API_REDIRECT]}
                              for c, s in API_CLIENTS.items()],
              "api": {"resource": API_RESOURCE, "audience": CLIENT_ID}}
    if tls is not None:
        config["tls"] = tls
    return config


@contextlib.contextmanager
def running_provider(config: dict[str, Any]) -> Iterator[str]:
    """provider.mjs running with ``config``; yields its issuer URL."""
    node = _node()
    process = subprocess.Popen([node, str(HARNESS / "provider.mjs"), json.dumps(config)],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            pytest.fail(f"oidc-provider did not start (exit {process.wait(timeout=5)})")
        yield str(json.loads(line)["issuer"])
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


@contextlib.contextmanager
def running_interop(tmp_path: Path, provider: dict[str, Any] | None = None,
                    **settings: Any) -> Iterator[Interop]:
    """The provider and a broker signing in to it (``settings`` over the defaults;
    ``provider`` over the provider's configuration, e.g. its ``accounts`` or ``api``)."""
    broker = bind(0)
    with running_provider({**provider_config(broker.url), **(provider or {})}) as issuer:
        app = create_app(Settings(**{
            "env": "development", "instance_dir": tmp_path, "public_url": broker.url,
            "oidc_issuer": issuer, "oidc_client_id": CLIENT_ID,
            "oidc_client_secret": CLIENT_SECRET, "oidc_audience": CLIENT_ID,
            "secret_key": "s" * 40, "audit_key": "a" * 40, **settings}).checked(),
            migrate=True)
        broker.start(app)
        try:
            yield Interop(issuer, broker, app)
        finally:
            broker.stop()
            app.extensions["federator"].fanout.shutdown()
            app.extensions["federator"].engine.dispose()


def sign_in(interop: Interop, http: requests.Session, login: str,
            next_path: str = "/healthz") -> requests.Response:
    """Sign a browser in through the provider's login and consent forms."""
    return sign_in_at(interop.broker.url, interop.issuer, http, login, next_path)


def sign_in_at(broker_url: str, issuer: str, http: requests.Session, login: str,
               next_path: str = "/healthz") -> requests.Response:
    """``sign_in`` to any broker signing in at the provider ``issuer``."""
    page = http.get(f"{broker_url}/sign-in", params={"next": next_path}, timeout=15)
    first = urlsplit(page.history[0].headers["Location"])
    assert first.netloc == urlsplit(issuer).netloc
    query = parse_qs(first.query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["state"] and query["nonce"]
    consent = submit_only_form(http, page, login=login, password="any")
    return submit_only_form(http, consent)


def api_access_token(interop: Interop, login: str, client_id: str = "case-system") -> str:
    """An access token for the API as a case system gets one: its own code flow with
    PKCE, asking for the API as ``resource`` (RFC 8707); the provider answers an
    RFC 9068 JWT (``typ: at+jwt``) naming the broker's audience."""
    return access_token_at(interop.issuer, login, client_id)


def access_token_at(issuer: str, login: str, client_id: str = "case-system", *,
                    verify: str | bool = True) -> str:
    """``api_access_token`` from the provider ``issuer`` (``verify``: its CA bundle)."""
    metadata = requests.get(f"{issuer}/.well-known/openid-configuration",
                            timeout=10, verify=verify).json()
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(
        hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {"client_id": client_id, "response_type": "code", "redirect_uri": API_REDIRECT,
             "scope": "openid lookups", "resource": API_RESOURCE, "state": "s" * 16,
             "nonce": "n" * 16, "code_challenge": challenge, "code_challenge_method": "S256"}
    with requests.Session() as http:
        http.verify = verify
        http.trust_env = verify is True  # else REQUESTS_CA_BUNDLE would override verify
        login_page = http.get(f"{metadata['authorization_endpoint']}?{urlencode(query)}",
                              timeout=15)
        consent = submit_only_form(http, login_page, login=login, password="any")
        answer = submit_only_form(http, consent, allow_redirects=False)
        while not answer.headers["Location"].startswith(API_REDIRECT):
            answer = http.get(urljoin(answer.url, answer.headers["Location"]),
                              allow_redirects=False, timeout=15)
        code = parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]
        token = http.post(metadata["token_endpoint"], timeout=15,
                          auth=(client_id, API_CLIENTS[client_id]),
                          data={"grant_type": "authorization_code", "code": code,
                                "redirect_uri": API_REDIRECT, "code_verifier": verifier,
                                "resource": API_RESOURCE})
    assert token.status_code == 200, token.text
    return str(token.json()["access_token"])


def jwt_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A JWT's header and claims, unverified (to show what a test sends)."""
    head, body = token.split(".")[:2]
    return tuple(json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))  # type: ignore[return-value]
                 for p in (head, body))
