"""Interoperability: the broker's web sign-in against an independent, certified
OpenID provider (npm ``oidc-provider``, started here on loopback with its own
keys and a test client), driven by a real HTTP client that follows redirects and
submits the provider's own login and consent forms. Not a mock. (Sessions ending,
roles re-read, access tokens and acr against the same provider:
``test_auth_sessions_oidc.py``.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from flask import Flask
from support.oidc_provider import Interop, running_interop, sign_in, submit_only_form
from support.web_client import session_record

pytestmark = pytest.mark.integration


@pytest.fixture
def interop(tmp_path: Path) -> Iterator[Interop]:
    with running_interop(tmp_path) as running:
        running.app.config["FEDERATOR_TEST_URL"] = running.broker.url
        yield running


def _session(app: Flask, http: requests.Session) -> dict:
    return session_record(app, http.cookies.get(app.config["SESSION_COOKIE_NAME"]))


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
