"""Pure rules of sign-in: claims to principal, safe return paths, session expiry,
cookie settings, security headers and limit strings."""

from __future__ import annotations

import pytest
from flask import Flask

from federator.auth.headers import content_security_policy, init_headers, no_store, origin
from federator.auth.oidc import safe_next, session_data
from federator.auth.sessions import cookie_config, expiry
from federator.auth.tokens import InvalidToken, claim, principal_from_claims
from federator.config import Settings


def test_principal_keeps_only_known_roles() -> None:
    p = principal_from_claims({"sub": "u1", "name": "Sam", "roles": ["practitioner", "root"],
                               "organisation": "Leeds"})
    assert p.roles == ("practitioner",)
    assert (p.id, p.name, p.organisation) == ("u1", "Sam", "Leeds")


def test_roles_from_a_configured_nested_claim_or_a_space_separated_string() -> None:
    nested = {"sub": "u", "realm_access": {"roles": ["auditor"]}, "org": {"name": "York"}}
    p = principal_from_claims(nested, roles_claim="realm_access.roles",
                              organisation_claim="org.name")
    assert p.roles == ("auditor",) and p.organisation == "York"
    assert principal_from_claims({"sub": "u", "roles": "auditor broker-admin"}).roles == (
        "auditor", "broker-admin")
    assert claim({"a": {"b": 1}}, "a.c") is None


def test_authority_admin_needs_the_authority_it_administers() -> None:
    without = principal_from_claims({"sub": "u", "roles": ["authority-admin"]})
    assert without.roles == ()
    with_it = principal_from_claims({"sub": "u", "roles": ["authority-admin"],
                                     "authority": "leeds-cs"})
    assert with_it.roles == ("authority-admin",) and with_it.authority == "leeds-cs"


@pytest.mark.parametrize("claims", [{}, {"sub": ""}, {"sub": 5}])
def test_no_subject_is_refused(claims: dict) -> None:
    with pytest.raises(InvalidToken):
        principal_from_claims(claims)


def test_wrong_types_give_no_roles_rather_than_an_error() -> None:
    p = principal_from_claims({"sub": "u", "roles": {"practitioner": True},
                               "organisation": ["x", "y"]})
    assert p.roles == () and p.organisation == ""
    # a list of one organisation (a path through CIS2's RBAC roles, all at one org) is it
    assert principal_from_claims({"sub": "u", "organisation": ["x", "x"]}).organisation == "x"
    assert principal_from_claims({"sub": "u", "organisation": [{"x": 1}]}).organisation == ""


def test_session_data_round_trips_through_session_principal() -> None:
    from federator.auth.access import session_principal
    p = principal_from_claims({"sub": "u", "name": "N", "roles": ["practitioner"],
                               "organisation": "O", "job_title": "Nurse"})
    app = Flask(__name__)
    app.secret_key = "k" * 32
    with app.test_request_context():
        from flask import session
        session["principal"] = session_data(p)
        assert session_principal() == p


@pytest.mark.parametrize(("raw", "expected"), [
    (None, "/"), ("", "/"), ("/lookups/new?x=1", "/lookups/new?x=1"), ("/x?", "/x"),
    ("https://evil.example/", "/"), ("//evil.example", "/"), ("/\\evil.example", "/"),
    ("javascript:alert(1)", "/"), ("/a\r\nSet-Cookie: x=1", "/"), ("relative", "/"),
])
def test_safe_next(raw: str | None, expected: str) -> None:
    assert safe_next(raw) == expected


def test_session_expiry() -> None:
    idle, life = 15 * 60, 10 * 3600
    assert expiry(1000.0, 900.0, 990.0, idle_s=idle, absolute_s=life) is None
    assert expiry(1000.0 + idle, 1000.0, 1000.0, idle_s=idle, absolute_s=life) == "idle"
    assert expiry(1000.0 + idle - 1, 1000.0, 1000.0, idle_s=idle, absolute_s=life) is None
    assert expiry(1000.0 + life, 1000.0, 1000.0 + life - 1, idle_s=idle,
                  absolute_s=life) == "lifetime"
    assert expiry(1000.0, None, 990.0, idle_s=idle, absolute_s=life) == "lifetime"
    assert expiry(1000.0, "900", 990.0, idle_s=idle, absolute_s=life) == "lifetime"
    assert expiry(1000.0, 5000.0, 5000.0, idle_s=idle, absolute_s=life) == "lifetime"


def test_cookies_are_secure_except_in_development_over_http() -> None:
    prod = cookie_config(Settings(public_url="https://federator.example"))
    assert prod["SESSION_COOKIE_SECURE"] is True
    assert prod["SESSION_COOKIE_HTTPONLY"] is True
    assert prod["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert str(prod["SESSION_COOKIE_NAME"]).startswith("__Host-")
    assert cookie_config(Settings(public_url="http://x"))["SESSION_COOKIE_SECURE"] is True
    dev = cookie_config(Settings(env="development", public_url="http://127.0.0.1:5000"))
    assert dev["SESSION_COOKIE_SECURE"] is False
    dev_tls = cookie_config(Settings(env="development", public_url="https://localhost"))
    assert dev_tls["SESSION_COOKIE_SECURE"] is True


def test_session_settings_from_the_environment() -> None:
    s = Settings.from_env({"FEDERATOR_ENV": "development",
                           "FEDERATOR_SESSION_IDLE_MINUTES": "5",
                           "FEDERATOR_LOOKUPS_PER_MINUTE": "3",
                           "FEDERATOR_LOOKUPS_PER_DAY": "30",
                           "FEDERATOR_ROLES_CLAIM": "realm_access.roles"})
    assert (s.session_idle_minutes, s.lookups_per_minute, s.lookups_per_day) == (5, 3, 30)
    assert s.roles_claim == "realm_access.roles"
    defaults = Settings.from_env({"FEDERATOR_ENV": "development"})
    assert defaults.session_idle_minutes == 15


def test_csp_is_strict() -> None:
    policy = content_security_policy("abc", ["https://idp.example"])
    directives = dict(d.split(" ", 1) for d in policy.split("; "))
    assert directives["script-src"] == "'self' 'nonce-abc'"
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert directives["form-action"] == "'self' https://idp.example"
    assert content_security_policy(None).count("nonce") == 0
    assert origin("https://idp.example/realms/x") == "https://idp.example"
    assert origin(None) is None


def _app() -> Flask:
    app = Flask(__name__)
    init_headers(app, identity_provider="https://idp.example/x")

    @app.get("/child")
    @no_store
    def child() -> tuple[str, int, dict[str, str]]:
        return "a child's page", 200, {"Cache-Control": "max-age=600"}

    @app.get("/cached")
    def cached() -> tuple[str, int, dict[str, str]]:
        return "public", 200, {"Cache-Control": "public, max-age=60"}

    @app.get("/plain")
    def plain() -> str:
        return "plain"

    return app


def test_every_response_carries_the_security_headers() -> None:
    client = _app().test_client()
    for path in ("/child", "/cached", "/plain", "/missing"):
        r = client.get(path)
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
        assert r.headers["Strict-Transport-Security"].startswith("max-age=31536000")
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["X-Frame-Options"] == "DENY"


def test_no_store_views_are_never_cached_even_if_they_ask() -> None:
    client = _app().test_client()
    assert client.get("/child").headers["Cache-Control"] == "no-store"
    assert client.get("/plain").headers["Cache-Control"] == "no-store"
    assert client.get("/cached").headers["Cache-Control"] == "public, max-age=60"
