"""Attacks on sign-in and the API, against the independent OpenID provider
(npm ``oidc-provider``, ``support.oidc_provider``) and a broker keeping its
sessions in the real Redis: a cookie replayed after sign-out or the idle
time-out, roles withdrawn at the provider, an ID token or another client's token
as a bearer token, a sign-in or token without the required ``acr``, a forged
cookie, and Redis down under a signed-in browser."""

from __future__ import annotations

import re
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
import requests
from itsdangerous import URLSafeTimedSerializer
from support.oidc_provider import (
    ACCOUNTS,
    Interop,
    api_access_token,
    jwt_parts,
    running_interop,
    sign_in,
)
from support.own_redis import NEEDS_REDIS, OwnRedis
from support.web_client import rewrite_session, session_record, session_tokens, signed_in

from federator.auth.session_store import record_key

pytestmark = pytest.mark.integration
PAGE = "/lookups/new"  # a practitioner's page
HTML = {"Accept": "text/html"}


@pytest.fixture
def interop(request: pytest.FixtureRequest, tmp_path: Path, redis_url: str,
            redis_prefix: str) -> Iterator[Interop]:
    settings: dict[str, Any] = getattr(request, "param", {})
    with running_interop(tmp_path, redis_url=redis_url, redis_prefix=redis_prefix,
                         **settings) as running:
        yield running


def page(interop: Interop, http: requests.Session, path: str = PAGE) -> requests.Response:
    return http.get(f"{interop.broker.url}{path}", headers=HTML, allow_redirects=False,
                    timeout=15)


def replayed(interop: Interop, cookie: str) -> requests.Response:
    """The page asked for by another browser holding only a copy of the cookie."""
    with requests.Session() as thief:
        thief.cookies.set(interop.app.config["SESSION_COOKIE_NAME"], cookie,
                          domain="127.0.0.1", path="/")
        return page(interop, thief)


def sent_to_sign_in(answer: requests.Response) -> bool:
    return answer.status_code == 302 and "/sign-in" in answer.headers["Location"]


def form_token(interop: Interop, http: requests.Session) -> str:
    shown = page(interop, http)
    assert shown.status_code == 200, shown.text[:300]
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', shown.text)
    assert found
    return found.group(1)


def api(interop: Interop, token: str) -> requests.Response:
    """An API call that needs a practitioner's bearer token: 401 when the token is
    refused, else 422 (the empty body is refused after authentication)."""
    return requests.post(f"{interop.broker.url}/api/v1/lookups", json={}, timeout=15,
                         headers={"Authorization": f"Bearer {token}"})


# -- sign-out and time-outs -------------------------------------------------------------


def test_a_cookie_copied_before_sign_out_opens_nothing_afterwards(
        interop: Interop, redis_url: str, redis_prefix: str) -> None:
    with requests.Session() as http:
        sign_in(interop, http, "sam")
        cookie = interop.cookie(http)
        assert cookie is not None
        held = session_record(interop.app, cookie)
        # the cookie is a random id: no ID token, no name, no roles in it
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", cookie)
        assert held["tokens"]["id_token"] not in cookie and "Sam" not in cookie
        # the record is in Redis, under a hash of the id (not the id itself)
        client = redis.Redis.from_url(redis_url)
        try:
            key = redis_prefix + record_key(cookie)
            assert client.exists(key) and cookie not in key
            assert 0 < client.ttl(key) <= 15 * 60 + 30  # the idle time-out
        finally:
            client.close()
        assert replayed(interop, cookie).status_code == 200  # the copy works while signed in
        out = http.post(f"{interop.broker.url}/sign-out", allow_redirects=False, timeout=15,
                        data={"csrf_token": form_token(interop, http)})
        assert out.status_code == 302
    assert session_record(interop.app, cookie) == {}
    assert sent_to_sign_in(replayed(interop, cookie))


def test_a_cookie_replayed_after_the_idle_time_out_opens_nothing(interop: Interop) -> None:
    with requests.Session() as http:
        sign_in(interop, http, "sam")
        cookie = interop.cookie(http)
        assert cookie is not None and page(interop, http).status_code == 200
        rewrite_session(interop.app, cookie, last_seen=time.time() - 15 * 60 - 1)
        assert sent_to_sign_in(replayed(interop, cookie))
        assert session_record(interop.app, cookie) == {}  # deleted, not only ignored
        assert sent_to_sign_in(page(interop, http))


def test_a_forged_cookie_opens_nothing(interop: Interop) -> None:
    app = interop.app
    principal = {"id": "sam", "name": "Sam Patel", "roles": ["practitioner"],
                 "organisation": "Leeds City Council"}
    # What the signed cookie of before held, signed with the broker's own secret key.
    signed = URLSafeTimedSerializer(app.secret_key, salt="cookie-session",  # type: ignore[arg-type]
                                    signer_kwargs={"key_derivation": "hmac",
                                                   "digest_method": "sha1"})
    old_style = signed.dumps({"principal": principal, "signed_in_at": time.time(),
                              "last_seen": time.time(), "_permanent": True})
    for forged in (secrets.token_urlsafe(32), old_style, "x" * 43, "../" * 20):
        assert sent_to_sign_in(replayed(interop, forged)), forged


# -- roles re-read from the provider ------------------------------------------------------


def back_in_time(interop: Interop, cookie: str, minutes: float) -> None:
    """As if the roles were last read ``minutes`` ago (and the user was just seen)."""
    rewrite_session(interop.app, cookie, roles_checked_at=time.time() - minutes * 60,
                    last_seen=time.time())


def test_roles_withdrawn_at_the_provider_stop_working_within_the_refresh_interval(
        interop: Interop) -> None:
    with requests.Session() as http:
        sign_in(interop, http, "sam")
        cookie = interop.cookie(http)
        assert cookie is not None
        interop.put_account("sam", {**ACCOUNTS["sam"], "roles": []})
        back_in_time(interop, cookie, 4.9)  # FEDERATOR_SESSION_REFRESH_MINUTES is 5
        assert page(interop, http).status_code == 200  # not yet re-read
        back_in_time(interop, cookie, 5)
        assert sent_to_sign_in(page(interop, http))
        assert session_record(interop.app, cookie) == {}
        assert sent_to_sign_in(replayed(interop, cookie))
    ended = interop.app.extensions["federator"].trail.records(event="auth.signed_out")[-1]
    assert (ended["actor_id"], ended["reason"]) == ("sam", "no role left at the identity provider")


def test_an_account_deleted_at_the_provider_ends_the_session(interop: Interop) -> None:
    with requests.Session() as http:
        sign_in(interop, http, "sam")
        cookie = interop.cookie(http)
        assert cookie is not None
        interop.put_account("sam", None)
        back_in_time(interop, cookie, 6)
        assert sent_to_sign_in(page(interop, http))
        assert session_record(interop.app, cookie) == {}
    ended = interop.app.extensions["federator"].trail.records(event="auth.signed_out")[-1]
    assert ended["reason"] == "the identity provider no longer vouches for the session"


def test_roles_still_held_are_re_read_and_the_session_goes_on(interop: Interop) -> None:
    with requests.Session() as http:
        sign_in(interop, http, "sam")
        cookie = interop.cookie(http)
        assert cookie is not None
        before = session_record(interop.app, cookie)
        interop.put_account("sam", {**ACCOUNTS["sam"], "job_title": "Team manager"})
        back_in_time(interop, cookie, 6)
        assert page(interop, http).status_code == 200
        after = session_record(interop.app, cookie)
        assert after["roles_checked_at"] > time.time() - 60
        assert after["principal"]["job_title"] == "Team manager"  # read again, not kept
        # the refresh grant gave a new access token (and the provider rotated the refresh one)
        renewed = session_tokens(interop.app, cookie)
        assert renewed["access_token"] != before["tokens"]["access_token"]
        assert renewed["id_token"]  # kept for signing out at the provider


# -- bearer tokens: access tokens only -----------------------------------------------------


def test_an_id_token_is_not_an_api_bearer_token(interop: Interop) -> None:
    with requests.Session() as http:
        sign_in(interop, http, "sam")
        id_token = session_record(interop.app, interop.cookie(http))["tokens"]["id_token"]
    _, claims = jwt_parts(id_token)
    assert claims["aud"] == interop.app.extensions["federator"].settings.oidc_audience
    refused = api(interop, id_token)
    assert refused.status_code == 401, refused.text
    assert "ID token" in refused.json()["message"]
    access = api_access_token(interop, "sam")
    assert jwt_parts(access)[0]["typ"] == "at+jwt"
    assert api(interop, access).status_code == 422  # authenticated


@pytest.mark.parametrize("interop", [{"oidc_token_clients": ("case-system",)}],
                         indirect=True)
def test_a_token_of_a_client_not_allowed_is_refused(interop: Interop) -> None:
    other = api_access_token(interop, "sam", client_id="other-system")
    assert jwt_parts(other)[1]["client_id"] == "other-system"
    refused = api(interop, other)
    assert refused.status_code == 401
    assert "client this API does not accept" in refused.json()["message"]
    assert api(interop, api_access_token(interop, "sam")).status_code == 422


# -- the authentication level ---------------------------------------------------------------


@pytest.mark.parametrize("interop", [{"required_acr": ("urn:test:aal3",)}], indirect=True)
def test_a_sign_in_or_token_below_the_required_acr_is_refused(interop: Interop) -> None:
    with requests.Session() as http:  # the provider is asked for the level
        start = http.get(f"{interop.broker.url}/sign-in", allow_redirects=False, timeout=15)
        assert parse_qs(urlsplit(start.headers["Location"]).query)["acr_values"] == [
            "urn:test:aal3"]
    with requests.Session() as http:
        weak = sign_in(interop, http, "sam")  # signs in at urn:test:aal1
        assert weak.status_code == 403
        assert "Sign in with stronger authentication" in weak.text
        assert "urn:test:aal3" in weak.text
        assert session_record(interop.app, interop.cookie(http)).get("principal") is None
        assert sent_to_sign_in(page(interop, http))
    trail = interop.app.extensions["federator"].trail
    assert trail.records(event="auth.refused")[-1]["actor_id"] == "sam"
    with requests.Session() as http:
        none = sign_in(interop, http, "ray")  # no acr at all
        assert none.status_code == 403 and "no authentication level" in none.text
    with requests.Session() as http:
        strong = sign_in(interop, http, "kim", next_path=PAGE)
        assert strong.status_code == 200 and strong.url.endswith(PAGE)
    low = api(interop, api_access_token(interop, "sam"))
    assert low.status_code == 401 and "acr" in low.json()["message"]
    missing = api(interop, api_access_token(interop, "ray"))
    assert missing.status_code == 401
    assert "no authentication level" in missing.json()["message"]
    assert api(interop, api_access_token(interop, "kim")).status_code == 422


# -- Redis down ------------------------------------------------------------------------------


@NEEDS_REDIS
def test_with_redis_down_pages_answer_503_and_nothing_opens(tmp_path: Path) -> None:
    (tmp_path / "redis").mkdir()
    own = OwnRedis(tmp_path / "redis")
    try:
        with running_interop(tmp_path / "broker", redis_url=own.url) as interop, \
                requests.Session() as http:
            sign_in(interop, http, "sam")
            assert page(interop, http).status_code == 200
            own.stop()
            for path in (PAGE, "/", "/sign-in"):
                down = page(interop, http, path)
                assert down.status_code == 503, (path, down.status_code)
                assert "cannot check who is signed in" in down.text
            assert page(interop, http, "/healthz").status_code == 200
            own.start()  # an empty Redis: the session did not survive
            assert sent_to_sign_in(page(interop, http))
    finally:
        own.process.kill()
        own.process.wait(timeout=10)


# -- the provider down when roles are due -----------------------------------------------------


def test_with_the_provider_unreachable_when_roles_are_due_pages_answer_503(
        tmp_path: Path) -> None:
    from federator import create_app
    from federator.config import Settings

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        issuer = f"http://127.0.0.1:{closed.getsockname()[1]}"
        app = create_app(Settings(env="development", instance_dir=tmp_path,
                                  oidc_issuer=issuer).checked(), migrate=True)
        try:
            client = signed_in(app, "practitioner")
            assert client.get(PAGE, headers=HTML).status_code == 200
            with client.session_transaction() as s:
                s["roles_checked_at"] = time.time() - 6 * 60
            down = client.get(PAGE, headers=HTML)
            assert down.status_code == 503
            assert "Your roles cannot be confirmed" in down.get_data(as_text=True)
            with client.session_transaction() as s:  # nothing decided: kept for later
                assert s["principal"]["roles"] == ["practitioner"]
        finally:
            app.extensions["federator"].engine.dispose()


def test_while_another_request_re_reads_the_roles_a_page_writes_nothing_over_it(
        interop: Interop, redis_url: str, redis_prefix: str) -> None:
    """A refresh token may be used once (the demo provider's are; oidc-provider
    keeps a confidential client's): two requests of one session must not both
    spend it (the second would be refused and sign the user out), nor one that
    writes the record put the old tokens back over the new."""
    with requests.Session() as http:
        sign_in(interop, http, "sam")
        cookie = interop.cookie(http)
        assert cookie is not None
        back_in_time(interop, cookie, 6)
        waiting = session_record(interop.app, cookie)
        client = redis.Redis.from_url(redis_url)
        try:
            lock = redis_prefix + record_key(cookie) + ":refreshing"
            client.set(lock, "1", ex=30)  # as if another request were re-reading them
            assert page(interop, http).status_code == 200
            assert session_record(interop.app, cookie)["roles_checked_at"] == \
                waiting["roles_checked_at"]  # not re-read by this one
            client.delete(lock)
            assert page(interop, http).status_code == 200
            renewed = session_tokens(interop.app, cookie)
            assert renewed["access_token"] != waiting["tokens"]["access_token"]
            assert session_record(interop.app, cookie)["roles_checked_at"] > \
                waiting["roles_checked_at"]
            # a request that writes the record (here: a page's first form token) after
            # the renewal cannot put the spent refresh token back
            rewrite_session(interop.app, cookie, tokens=waiting["tokens"])
            assert session_tokens(interop.app, cookie) == renewed
            back_in_time(interop, cookie, 6)
            assert page(interop, http).status_code == 200  # renewed again, not refused
            assert session_tokens(interop.app, cookie)["access_token"] != \
                renewed["access_token"]
        finally:
            client.close()
        assert session_record(interop.app, cookie)["principal"]["id"] == "sam"
