"""The role matrix (every route × every role and anonymous, as the ACCESS table
says), CSRF on forms, and per-practitioner lookup limits: in one process, and
shared by two broker processes on one Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask, got_request_exception
from flask.testing import FlaskClient

from federator import create_app
from federator.auth.access import ACCESS, BEARER, PAGES, PUBLIC
from federator.config import Settings
from federator.demo.idp import create_idp_app, fetch_token
from federator.demo.serving import ServedApp, bind

pytestmark = pytest.mark.integration

PERSONAS = {"practitioner": "practitioner", "auditor": "auditor",
            "broker-admin": "broker-admin", "authority-admin": "authority-admin:leeds-cs"}
SESSION_PRINCIPALS = {
    "practitioner": {"id": "p1", "name": "P", "roles": ["practitioner"], "organisation": "L"},
    "auditor": {"id": "a1", "name": "A", "roles": ["auditor"], "organisation": "L"},
    "broker-admin": {"id": "b1", "name": "B", "roles": ["broker-admin"], "organisation": "F"},
    "authority-admin": {"id": "aa1", "name": "J", "roles": ["authority-admin"],
                        "organisation": "L", "authority": "leeds-cs"},
}


@pytest.fixture(scope="module")
def idp() -> Iterator[ServedApp]:
    served = bind(0)
    served.start(create_idp_app(served.url, authorities={"leeds-cs": "Leeds"}))
    yield served
    served.stop()


@pytest.fixture(scope="module")
def tokens(idp: ServedApp) -> dict[str, str]:
    return {role: fetch_token(idp.url, persona) for role, persona in PERSONAS.items()}


def settings_for(directory: Path, idp: ServedApp, **extra: Any) -> Settings:
    return Settings(env="development", instance_dir=directory, oidc_issuer=idp.url,
                    secret_key="s" * 40, audit_key="a" * 40, **extra).checked()


def lookup_body() -> dict[str, Any]:
    return {"child": {"nhs_number": "9434765919"},
            "purpose": "Assessment under section 17: finding services already involved",
            "basis": {"type": "consent", "given_by": "parent",
                      "given_on": (date.today() - timedelta(days=2)).isoformat(),
                      "reference": "CASE-1"}}


# -- the role matrix -------------------------------------------------------------


def _url(app: Flask, rule: Any, method: str) -> str:
    values: dict[str, Any] = {}
    for name in rule.arguments:
        converter = rule._converters[name]
        kind = type(converter).__name__
        if "Any" in kind:
            values[name] = sorted(converter.items)[0]
        else:
            values[name] = 1 if "Integer" in kind else (
                str(uuid.uuid4()) if "UUID" in kind else "x1")
    return app.url_map.bind("localhost").build(rule.endpoint, values, method=method)


def _call(client: FlaskClient, url: str, method: str, identity: str | None,
          tokens: dict[str, str], bearer: bool) -> Any:
    headers = {}
    with client.session_transaction() as session:
        session.clear()
        if identity and not bearer:
            import time
            session.update(principal=SESSION_PRINCIPALS[identity], signed_in_at=time.time(),
                           last_seen=time.time())
    if identity and bearer:
        headers["Authorization"] = f"Bearer {tokens[identity]}"
    kwargs: dict[str, Any] = {"headers": headers}
    if method in ("POST", "PUT", "PATCH"):
        kwargs["json"] = {}
    return client.open(url, method=method, **kwargs)


def test_every_route_admits_exactly_the_roles_the_access_table_names(
        tmp_path: Path, idp: ServedApp, tokens: dict[str, str]) -> None:
    """And no route answers any role (or anonymous) with a server error: every 5xx
    is listed at the end with its route, role and the exception behind it."""
    app = create_app(settings_for(tmp_path, idp, lookups_per_minute=1000), migrate=True)
    app.config["WTF_CSRF_ENABLED"] = False  # CSRF has its own test below
    client = app.test_client()
    checked = 0
    raised: list[BaseException] = []
    server_errors: list[str] = []

    def record(sender: Flask, exception: BaseException, **extra: Any) -> None:
        raised.append(exception)

    got_request_exception.connect(record, app)
    for rule in app.url_map.iter_rules():
        blueprint = "static" if rule.endpoint == "static" else rule.endpoint.partition(".")[0]
        if blueprint == "static":
            continue
        assert blueprint in ACCESS, f"{rule.endpoint} has no access rule"
        allowed = ACCESS[blueprint]
        bearer = blueprint in BEARER
        assert allowed == PUBLIC or bearer or blueprint in PAGES, blueprint
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            url = _url(app, rule, method)
            for identity in (None, *PERSONAS):
                raised.clear()
                response = _call(client, url, method, identity, tokens, bearer)
                where = f"{method} {url} as {identity or 'anonymous'}: {response.status_code}"
                checked += 1
                if response.status_code >= 500:
                    server_errors.append(where + "".join(
                        f" ({type(e).__name__}: {e})" for e in raised))
                    continue
                if allowed == PUBLIC:
                    if identity is None:  # open to anyone; what it shows a role is its own
                        assert response.status_code not in (401, 403), where
                elif identity is None:
                    if bearer:
                        assert response.status_code == 401, where
                    else:
                        assert response.status_code == 302, where
                        assert "/sign-in" in response.headers["Location"], where
                elif identity not in allowed:
                    assert response.status_code == 403, where
                elif bearer:
                    assert response.status_code != 401, where
                    body = response.get_json(silent=True) or {}
                    assert "needs the role" not in str(body.get("message", "")), where
                else:
                    assert response.status_code != 403, where
                    assert "/sign-in" not in response.headers.get("Location", ""), where
    got_request_exception.disconnect(record, app)
    assert checked > 0
    # the redaction routes are in the matrix, for auditors alone (issue 18)
    redacting = {rule.rule: rule.endpoint.partition(".")[0] for rule in app.url_map.iter_rules()
                 if "/redact" in rule.rule}
    assert set(redacting) == {"/api/v1/audit/records/<int:seq>/redact",
                              "/audit/records/<int:seq>/redact/<any(\"purpose\", "
                              "\"justification\", \"basis.justification\", "
                              "\"basis.reference\"):field>"}, redacting
    assert {ACCESS[b] for b in redacting.values()} == {("auditor",)}
    assert server_errors == [], "server errors:\n" + "\n".join(server_errors)
    app.extensions["federator"].engine.dispose()


def test_forms_need_the_csrf_token_but_the_bearer_api_does_not(
        tmp_path: Path, idp: ServedApp, tokens: dict[str, str]) -> None:
    app = create_app(settings_for(tmp_path, idp), migrate=True)
    client = app.test_client()
    refused = client.post("/sign-out")
    assert refused.status_code == 400
    api = client.post("/api/v1/lookups", json=lookup_body(),
                      headers={"Authorization": f"Bearer {tokens['practitioner']}"})
    assert api.status_code == 200, api.get_data(as_text=True)
    app.extensions["federator"].engine.dispose()


# -- limits in one process ----------------------------------------------------------


def _post(client: FlaskClient, token: str) -> Any:
    return client.post("/api/v1/lookups", json=lookup_body(),
                       headers={"Authorization": f"Bearer {token}"})


@pytest.mark.parametrize(("per_minute", "per_day"), [(2, 100), (100, 2)])
def test_lookup_limits_per_practitioner(tmp_path: Path, idp: ServedApp, tokens: dict[str, str],
                                        per_minute: int, per_day: int) -> None:
    app = create_app(settings_for(tmp_path, idp, lookups_per_minute=per_minute,
                                  lookups_per_day=per_day), migrate=True)
    client = app.test_client()
    assert [_post(client, tokens["practitioner"]).status_code for _ in range(2)] == [200, 200]
    refused = _post(client, tokens["practitioner"])
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert "too many lookups" in refused.get_json()["message"]
    assert "no-store" in refused.headers["Cache-Control"]
    other = fetch_token(idp.url, "practitioner-2")
    assert _post(client, other).status_code == 200
    trail = app.extensions["federator"].trail
    [hit] = trail.records(event="lookup.rate_limited")
    assert hit["actor_id"] == "demo-practitioner-1"
    assert ("minute" if per_minute == 2 else "day") in hit["limit"]
    assert len(trail.records(event="lookup.requested")) == 3
    assert trail.verify().ok
    app.extensions["federator"].engine.dispose()


# -- limits shared by two broker processes on one Redis ---------------------------


def _second_broker(settings: Settings) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "FEDERATOR_ENV": "development",
           "FEDERATOR_INSTANCE_DIR": str(settings.instance_dir),
           "FEDERATOR_DATABASE_URL": settings.sqlalchemy_url,
           "FEDERATOR_REDIS_URL": settings.redis_url or "",
           "FEDERATOR_REDIS_PREFIX": settings.redis_prefix,
           "FEDERATOR_SECRET_KEY": settings.secret_key,
           "FEDERATOR_AUDIT_KEY": settings.audit_key,
           "FEDERATOR_OIDC_ISSUER": settings.oidc_issuer or "",
           "FEDERATOR_LOOKUPS_PER_MINUTE": str(settings.lookups_per_minute)}
    code = ("import sys, time\n"
            "from federator import create_app\n"
            "from federator.demo.serving import bind\n"
            "served = bind(0).start(create_app())\n"
            "print(served.url, flush=True)\n"
            "sys.stdin.read()\n")
    process = subprocess.Popen([sys.executable, "-c", code], env=env, text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    if not url:
        process.kill()
        pytest.fail("the second broker process did not start")
    return process, url


def test_limits_are_shared_by_two_broker_processes_on_one_redis(
        tmp_path: Path, idp: ServedApp, tokens: dict[str, str], database_url: str,
        redis_url: str, redis_prefix: str) -> None:
    settings = settings_for(tmp_path, idp, database_url=database_url, redis_url=redis_url,
                            redis_prefix=redis_prefix, lookups_per_minute=3)
    app = create_app(settings, migrate=True)
    first = bind(0).start(app)
    process, second = _second_broker(settings)
    try:
        headers = {"Authorization": f"Bearer {tokens['practitioner']}"}
        statuses = []
        with requests.Session() as http:
            for url in (first.url, second, first.url, second):
                response = http.post(f"{url}/api/v1/lookups", json=lookup_body(),
                                     headers=headers, timeout=15)
                statuses.append(response.status_code)
        assert statuses == [200, 200, 200, 429]
        trail = app.extensions["federator"].trail
        assert len(trail.records(event="lookup.rate_limited")) == 1
        assert len(trail.records(event="lookup.requested")) == 3
        assert trail.verify().ok
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=15)
        if process.stdout is not None:
            process.stdout.close()
        first.stop()
        app.extensions["federator"].engine.dispose()
    assert json.dumps(statuses)


def test_the_lookup_page_is_limited_and_refused_input_does_not_count(
        tmp_path: Path, idp: ServedApp) -> None:
    app = create_app(settings_for(tmp_path, idp, lookups_per_minute=1), migrate=True)
    app.config["WTF_CSRF_ENABLED"] = False
    client = app.test_client()
    import time
    with client.session_transaction() as session:
        session.update(principal=SESSION_PRINCIPALS["practitioner"], signed_in_at=time.time(),
                       last_seen=time.time())
    # Refused input sends nothing and does not count against the lookups sent (it
    # has a budget of its own: test_lookup_budget.py); the form page itself never does.
    assert [client.post("/lookups/new", data={}).status_code for _ in range(3)] == [422] * 3
    assert client.get("/lookups/new").status_code == 200
    assert app.extensions["federator"].trail.records(event="lookup.rate_limited") == []
    app.extensions["federator"].engine.dispose()


def test_audited_downloads_are_posts_and_lookup_routes_answer_429_in_the_api_document(
        tmp_path: Path, idp: ServedApp) -> None:
    """The routes this matrix walks, as changed for issue 19: a cross-site link (a
    GET) cannot make an audited export, and every lookup route documents its 429."""
    app = create_app(settings_for(tmp_path, idp), migrate=True)
    methods = {rule.endpoint: rule.methods - {"HEAD", "OPTIONS"}
               for rule in app.url_map.iter_rules()}
    assert methods["web_audit.export_download"] == {"POST"}
    assert methods["web_audit.checkpoint_download"] == {"POST"}
    client = app.test_client()
    document = client.get("/api/openapi.json").get_json()
    for path in ("/api/v1/lookups", "/api/v1/lookups/{lookup_id}/retry"):
        assert "429" in document["paths"][path]["post"]["responses"], path
    schema = document["components"]["schemas"]["LookupRequest"]["properties"]
    assert "scope_reason" in schema
    app.extensions["federator"].engine.dispose()
