"""The development identity provider, served on a real loopback port."""

from __future__ import annotations

import threading
import time
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from werkzeug.serving import make_server

from federator.demo.idp import create_idp_app, fetch_token
from federator.demo.personas import PERSONAS

pytestmark = pytest.mark.integration

REDIRECT = "http://127.0.0.1:1/callback"


@pytest.fixture(scope="module")
def idp():
    holder = {}

    def dispatch(environ, start_response):
        return holder["app"](environ, start_response)

    server = make_server("127.0.0.1", 0, dispatch, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    holder["app"] = create_idp_app(
        base, authorities={"leeds-cs": "Leeds City Council"}, redirect_uris=[REDIRECT]
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()


def _password(base, username, password="demo", client_id="federator-cli"):  # noqa: S107
    return requests.post(
        f"{base}/token",
        data={"grant_type": "password", "username": username, "password": password,
              "client_id": client_id},
        timeout=10,
    )


def _verify(base, token, *, audience="federator"):
    discovery = requests.get(f"{base}/.well-known/openid-configuration", timeout=10).json()
    keys = KeySet.import_key_set(requests.get(discovery["jwks_uri"], timeout=10).json())
    decoded = jwt.decode(token, keys, algorithms=["ES256"])
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": base},
        aud={"essential": True, "value": audience},
        exp={"essential": True},
        sub={"essential": True},
    ).validate(decoded.claims)
    return decoded.claims


def test_discovery_and_jwks(idp):
    response = requests.get(f"{idp}/.well-known/openid-configuration", timeout=10)
    assert response.status_code == 200
    doc = response.json()
    assert doc["issuer"] == idp
    assert doc["token_endpoint"] == f"{idp}/token"
    assert doc["authorization_endpoint"] == f"{idp}/authorize"
    assert doc["jwks_uri"] == f"{idp}/jwks.json"
    assert {"password", "authorization_code"} <= set(doc["grant_types_supported"])
    jwks = requests.get(doc["jwks_uri"], timeout=10).json()
    assert len(jwks["keys"]) == 1
    key = jwks["keys"][0]
    assert key["kty"] == "EC" and key["kid"]
    assert "d" not in key, "private part never published"


@pytest.mark.parametrize("persona", ["practitioner", "practitioner-2", "auditor",
                                     "broker-admin"])
def test_password_grant_gives_a_verifiable_token(idp, persona):
    response = _password(idp, persona)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    claims = _verify(idp, body["access_token"])
    expected = PERSONAS[persona]
    assert claims["roles"] == [expected.role]
    assert claims["sub"] == expected.sub
    assert claims["name"] == expected.name
    assert claims["email"] == expected.email
    assert claims["organisation"] == expected.organisation
    assert claims["job_title"] == expected.job_title
    assert "authority" not in claims
    now = time.time()
    assert claims["iat"] <= now + 5
    assert now + 3000 < claims["exp"] <= now + 3605
    assert claims["jti"]


def test_authority_admin_for_any_authority(idp):
    claims = _verify(idp, _password(idp, "authority-admin:leeds-cs").json()["access_token"])
    assert claims["roles"] == ["authority-admin"]
    assert claims["authority"] == "leeds-cs"
    assert claims["organisation"] == "Leeds City Council"
    other = _verify(idp, _password(idp, "authority-admin:my-own-adapter").json()["access_token"])
    assert other["authority"] == "my-own-adapter"


def test_tokens_are_unique(idp):
    a = _verify(idp, _password(idp, "practitioner").json()["access_token"])
    b = _verify(idp, _password(idp, "practitioner").json()["access_token"])
    assert a["jti"] != b["jti"]


@pytest.mark.parametrize(("username", "password"), [
    ("practitioner", "wrong"),
    ("practitioner", ""),
    ("nobody", "demo"),
    ("authority-admin:", "demo"),
    ("authority-admin:Not An Id", "demo"),
])
def test_refused(idp, username, password):
    response = _password(idp, username, password)
    assert response.status_code in (400, 401)
    assert response.json()["error"] == "invalid_grant"
    assert "access_token" not in response.json()


def test_unknown_client_refused(idp):
    response = _password(idp, "practitioner", client_id="someone-else")
    assert response.status_code in (400, 401)
    assert response.json()["error"] == "invalid_client"


def test_token_from_another_provider_does_not_verify(idp):
    other = create_idp_app(idp)  # same issuer, different key
    forged = other.extensions["federator_demo_idp"].issue_access_token("practitioner")
    with pytest.raises((JoseError, ValueError)):
        _verify(idp, forged)


def test_userinfo(idp):
    token = _password(idp, "auditor").json()["access_token"]
    response = requests.get(f"{idp}/userinfo", headers={"Authorization": f"Bearer {token}"},
                            timeout=10)
    assert response.status_code == 200
    assert response.json()["roles"] == ["auditor"]
    assert requests.get(f"{idp}/userinfo", timeout=10).status_code == 401
    bad = requests.get(f"{idp}/userinfo", headers={"Authorization": "Bearer x.y.z"}, timeout=10)
    assert bad.status_code == 401


def test_fetch_token_helper(idp):
    claims = _verify(idp, fetch_token(idp, "broker-admin"))
    assert claims["roles"] == ["broker-admin"]
    with pytest.raises(RuntimeError, match="invalid_grant"):
        fetch_token(idp, "nobody")


def test_authorization_code_with_pkce(idp):
    verifier = "v" * 64
    query = {
        "response_type": "code", "client_id": "federator-web", "redirect_uri": REDIRECT,
        "scope": "openid profile email", "state": "s-123", "nonce": "n-456",
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
    }
    page = requests.get(f"{idp}/authorize", params=query, timeout=10)
    assert page.status_code == 200
    assert "Priya Shah" in page.text and "authority-admin:leeds-cs" in page.text
    chosen = requests.post(f"{idp}/authorize", params=query, data={"persona": "practitioner"},
                           allow_redirects=False, timeout=10)
    assert chosen.status_code == 302
    location = urlparse(chosen.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    params = parse_qs(location.query)
    assert params["state"] == ["s-123"]
    code = params["code"][0]

    def exchange(code_verifier):
        return requests.post(
            f"{idp}/token",
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                  "code_verifier": code_verifier},
            auth=("federator-web", "federator-demo-secret"), timeout=10,
        )

    assert exchange("w" * 64).json()["error"] == "invalid_grant"  # wrong verifier
    response = exchange(verifier)
    assert response.status_code == 200, response.text
    body = response.json()
    access = _verify(idp, body["access_token"])
    assert access["roles"] == ["practitioner"]
    id_token = _verify(idp, body["id_token"], audience="federator-web")
    assert id_token["nonce"] == "n-456"
    assert id_token["sub"] == PERSONAS["practitioner"].sub
    assert exchange(verifier).json()["error"] == "invalid_grant"  # used once


def test_authorization_requires_pkce_and_known_redirect(idp):
    base = {"response_type": "code", "client_id": "federator-web", "redirect_uri": REDIRECT,
            "scope": "openid", "state": "s"}
    no_pkce = requests.get(f"{idp}/authorize", params=base, allow_redirects=False, timeout=10)
    assert no_pkce.status_code == 302
    assert "error=invalid_request" in no_pkce.headers["Location"]
    evil = requests.get(
        f"{idp}/authorize",
        params={**base, "redirect_uri": "http://evil.example/cb",
                "code_challenge": create_s256_code_challenge("v" * 64),
                "code_challenge_method": "S256"},
        allow_redirects=False, timeout=10,
    )
    assert evil.status_code == 400
    assert "Location" not in evil.headers


def test_production_refused(monkeypatch):
    with pytest.raises(RuntimeError):
        create_idp_app("http://127.0.0.1:9", env="production")
    monkeypatch.setenv("FEDERATOR_ENV", "production")
    with pytest.raises(RuntimeError):
        create_idp_app("http://127.0.0.1:9")
