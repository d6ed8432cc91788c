"""Web sign-in through the whole redirect flow with a real HTTP client: against the
demo's identity provider (authlib) here, against npm's ``oidc-provider`` in
``test_auth_oidc_provider.py``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from flask import Flask
from support.web_client import rewrite_session, session_record, session_tokens

from federator.config import Settings
from federator.demo.federation import Federation, start_federation

pytestmark = pytest.mark.integration


class Forms(HTMLParser):
    """The forms of a page: action, method, inputs and submit buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "method": a.get("method", "get"),
                               "fields": {}, "buttons": []})
        elif tag in ("input", "button") and self.forms:
            if tag == "button" or a.get("type") == "submit":
                self.forms[-1]["buttons"].append((a.get("name"), a.get("value", "")))
            elif a.get("name"):
                self.forms[-1]["fields"][a["name"]] = a.get("value", "")


def forms_of(html: str) -> list[dict]:
    parser = Forms()
    parser.feed(html)
    return parser.forms


def submit(http: requests.Session, page: requests.Response, form: dict, **extra: str
           ) -> requests.Response:
    url = urljoin(page.url, form["action"] or page.url)
    data = {**form["fields"], **extra}
    return http.post(url, data=data, timeout=15)


def session_of(app: Flask, http: requests.Session) -> dict:
    """The broker's session as the broker holds it for the browser's cookie."""
    return session_record(app, http.cookies.get(app.config["SESSION_COOKIE_NAME"]))


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    fed = start_federation(tmp_path_factory.mktemp("signin"), authorities=4,
                           base=Settings(session_idle_minutes=15))
    yield fed
    fed.stop()


OPEN: list[requests.Session] = []


def browser() -> requests.Session:
    """A fresh cookie jar, closed after the test."""
    http = requests.Session()
    OPEN.append(http)
    return http


@pytest.fixture(autouse=True)
def _close_browsers() -> Iterator[None]:
    yield
    while OPEN:
        OPEN.pop().close()


def sign_in_as(fed: Federation, persona: str, next_path: str = "/api/openapi.json"
               ) -> tuple[requests.Session, requests.Response]:
    http = browser()
    login = http.get(f"{fed.broker.url}/sign-in", params={"next": next_path}, timeout=15)
    assert login.url.startswith(fed.idp.url), login.url
    query = parse_qs(urlsplit(login.history[0].headers["Location"]).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"]
    assert query["state"] and query["nonce"]
    [form] = forms_of(login.text)
    return http, submit(http, login, form, persona=persona)


def test_practitioner_signs_in_and_returns_to_where_they_were(federation: Federation) -> None:
    http, landed = sign_in_as(federation, "practitioner")
    assert landed.status_code == 200
    assert urlsplit(landed.url).path == "/api/openapi.json"
    held = session_of(federation.app, http)
    assert held["principal"]["id"] == "demo-practitioner-1"
    assert held["principal"]["roles"] == ["practitioner"]
    assert held["principal"]["organisation"] == "Leeds City Council"
    assert held["principal"]["job_title"] == "Social worker"
    assert held["tokens"]["id_token"] and held["tokens"]["access_token"]
    cookie = next(c for c in http.cookies if c.name == federation.app.config[
        "SESSION_COOKIE_NAME"])
    assert cookie.has_nonstandard_attr("HttpOnly")
    signed_in = federation.app.extensions["federator"].trail.records(event="auth.signed_in")
    assert signed_in[-1]["actor_id"] == "demo-practitioner-1"


def test_authority_admin_keeps_their_authority(federation: Federation) -> None:
    authority = federation.world.authorities[0].id
    http, _ = sign_in_as(federation, f"authority-admin:{authority}")
    principal = session_of(federation.app, http)["principal"]
    assert principal["roles"] == ["authority-admin"]
    assert principal["authority"] == authority


def test_next_cannot_send_the_user_to_another_site(federation: Federation) -> None:
    for evil in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        _, landed = sign_in_as(federation, "auditor", next_path=evil)
        assert urlsplit(landed.url).netloc == urlsplit(federation.broker.url).netloc
        # an unsafe next is dropped: the user lands on the home page, which sends an
        # auditor on to the first auditor page
        assert urlsplit(landed.url).path in ("/", "/audit/records", "/audit/queue")
        assert "evil" not in landed.url


def test_a_forged_or_replayed_callback_is_refused_without_signing_in(
        federation: Federation) -> None:
    http = browser()
    login = http.get(f"{federation.broker.url}/sign-in", timeout=15)
    [form] = forms_of(login.text)
    # Stop at the redirect back to the broker, then tamper with the state.
    back = http.post(urljoin(login.url, form["action"]),
                     data={**form["fields"], "persona": "practitioner"},
                     allow_redirects=False, timeout=15)
    location = back.headers["Location"]
    forged = location.replace("state=", "state=x")
    refused = http.get(forged, timeout=15)
    assert refused.status_code == 400
    assert "did not complete" in refused.text
    assert "principal" not in session_of(federation.app, http)
    # The genuine callback signs in once; replaying it is refused (state used up).
    assert http.get(location, timeout=15).status_code != 400
    assert session_of(federation.app, http)["principal"]["id"] == "demo-practitioner-1"
    replay = browser()
    assert replay.get(location, timeout=15).status_code == 400
    assert "principal" not in session_of(federation.app, replay)


def test_sign_out_needs_the_form_token_and_ends_the_session(federation: Federation) -> None:
    http, _ = sign_in_as(federation, "practitioner")
    without_token = http.post(f"{federation.broker.url}/sign-out", timeout=15)
    assert without_token.status_code == 400
    assert "principal" in session_of(federation.app, http)


def test_idle_session_is_ended(federation: Federation) -> None:
    http, _ = sign_in_as(federation, "practitioner")
    app = federation.app
    cookie = http.cookies[app.config["SESSION_COOKIE_NAME"]]
    rewrite_session(app, cookie, last_seen=time.time() - 16 * 60)
    page = http.get(f"{federation.broker.url}/lookups/new", allow_redirects=False,
                    headers={"Accept": "text/html"}, timeout=15)
    assert page.status_code == 302 and "/sign-in" in page.headers["Location"]
    assert session_record(app, cookie) == {}  # deleted, not just forgotten by this browser


def test_user_without_a_known_role_gets_a_clear_refusal(tmp_path: Path) -> None:
    from federator.demo.personas import Persona

    nobody = Persona("nobody", "demo-nobody", "Ann Other", "ann@example.gov.uk",
                     "receptionist", "Leeds City Council", "Receptionist")
    fed = start_federation(tmp_path / "norole", authorities=4)
    state = fed.idp.server.app.extensions["federator_demo_idp"]
    state.personas = {**state.personas, "nobody": nobody}
    try:
        _, refused = sign_in_as(fed, "nobody")
        assert refused.status_code == 403
        assert "no Federator role" in refused.text
        assert fed.app.extensions["federator"].trail.records(event="auth.refused")
    finally:
        fed.stop()


def test_roles_are_re_read_from_the_demo_provider_with_its_refresh_token(
        federation: Federation) -> None:
    http, _ = sign_in_as(federation, "practitioner")
    app = federation.app
    cookie = http.cookies[app.config["SESSION_COOKIE_NAME"]]
    before = session_record(app, cookie)
    assert before["tokens"]["refresh_token"]
    rewrite_session(app, cookie, roles_checked_at=time.time() - 6 * 60)
    page = http.get(f"{federation.broker.url}/lookups/new", allow_redirects=False,
                    headers={"Accept": "text/html"}, timeout=15)
    assert page.status_code == 200
    after = session_record(app, cookie)
    assert after["roles_checked_at"] > time.time() - 60
    assert session_tokens(app, cookie)["refresh_token"] != before["tokens"]["refresh_token"]
    assert after["principal"] == before["principal"]
