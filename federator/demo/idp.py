"""A development OpenID Connect provider, for the demo only.

The broker signs people in and checks API bearer tokens through the same
OIDC code path as in production; in the demo, this is the provider at the
other end. It refuses to exist when the environment is production.

- ``GET /.well-known/openid-configuration`` and ``GET /jwks.json``
- ``POST /token``: the resource-owner password grant for the demo CLI
  (``grant_type=password&username=<persona>&password=demo&client_id=federator-cli``)
  and the authorization-code grant (PKCE S256 required) for browser sign-in
- ``GET /authorize``: a page listing the personas; choosing one "signs in"
- ``POST /token`` with ``grant_type=refresh_token`` for the web client (the
  broker re-reads roles with it; each refresh token is used once)
- ``GET /userinfo``: the claims of a bearer access token

Tokens are JWTs signed with an ES256 key generated when the app is created,
built with authlib's OAuth 2 server pieces and signed with joserfc.
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Iterable, Mapping
from urllib.parse import urlencode

import requests
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import (
    InvalidGrantError,
    InvalidRequestError,
    scope_to_list,
)
from authlib.oauth2.rfc6749.grants import (
    AuthorizationCodeGrant,
    RefreshTokenGrant,
    ResourceOwnerPasswordCredentialsGrant,
)
from authlib.oauth2.rfc7636 import CodeChallenge
from flask import Flask, jsonify, render_template_string, request
from joserfc.errors import JoseError

from .idp_model import (
    _AUTH_METHODS,
    AUDIENCE,
    CLI_CLIENT_ID,
    CODE_LIFETIME_S,
    TOKEN_LIFETIME_S,
    WEB_CLIENT_ID,
    WEB_CLIENT_SECRET,
    DemoClient,
    DevIdentityProvider,
    _Code,
    _Refresh,
)
from .personas import DEMO_PASSWORD, PERSONAS, Persona


def _idp(grant) -> DevIdentityProvider:
    return grant.server.demo_idp


class _PasswordGrant(ResourceOwnerPasswordCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = _AUTH_METHODS

    def authenticate_user(self, username: str, password: str) -> Persona:
        persona = _idp(self).persona(username)
        good = hmac.compare_digest(password.encode(), DEMO_PASSWORD.encode())
        if persona is None or not good:
            raise InvalidGrantError("Unknown persona or wrong password.")
        return persona


class _PkceS256(CodeChallenge):
    """PKCE with S256, required of every client (public or not)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]  # noqa: RUF012 - authlib's attribute

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("Missing 'code_challenge' (PKCE is required)")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256")
        return super().validate_code_challenge(grant, redirect_uri)


class _CodeGrant(AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = _AUTH_METHODS

    def save_authorization_code(self, code: str, request) -> None:
        data = request.payload.data
        now = int(time.time())
        _idp(self).save_code(_Code(
            code=code,
            client_id=request.client.get_client_id(),
            redirect_uri=request.payload.redirect_uri or "",
            scope=request.scope or "",
            user=request.user,
            nonce=data.get("nonce"),
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
            auth_time=now,
            expires_at=now + CODE_LIFETIME_S,
        ))

    def query_authorization_code(self, code: str, client) -> _Code | None:
        return _idp(self).find_code(code, client.get_client_id())

    def delete_authorization_code(self, authorization_code: _Code) -> None:
        _idp(self).delete_code(authorization_code)

    def authenticate_user(self, authorization_code: _Code) -> Persona:
        return authorization_code.user

    def save_token(self, token: dict) -> None:
        code: _Code = self.request.authorization_code
        if "openid" in scope_to_list(code.scope or ""):
            token["id_token"] = _idp(self).issue_id_token(
                code.user, client_id=code.client_id, nonce=code.nonce,
                auth_time=code.auth_time,
            )
        super().save_token(token)


class _RefreshGrant(RefreshTokenGrant):
    """The web client's refresh tokens, used once each (a new one comes with
    every answer): the broker re-reads a signed-in user's roles with them."""

    TOKEN_ENDPOINT_AUTH_METHODS = _AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> _Refresh | None:
        return _idp(self).find_refresh_token(refresh_token)

    def authenticate_user(self, credential: _Refresh) -> Persona | None:
        return _idp(self).persona(credential.username)

    def revoke_old_credential(self, credential: _Refresh) -> None:
        _idp(self).revoke_refresh_token(credential)


# --------------------------------------------------------------------------
# The app
# --------------------------------------------------------------------------

_LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in: Federator demo</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:Arial,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}
button{display:block;width:100%;text-align:left;margin:.5rem 0;padding:.75rem;font-size:1rem}
.hint{color:#505a5f}</style></head>
<body><main>
<h1>Sign in to the Federator demo</h1>
<p class="hint">Development identity provider. Everyone here is fictional; choose who to be.
Requested by <strong>{{ client_id }}</strong>.</p>
<form method="post" action="{{ action }}">
{% for p in personas %}
<button type="submit" name="persona" value="{{ p.username }}">
<strong>{{ p.name }}</strong>: {{ p.job_title }}, {{ p.organisation }} ({{ p.role }})</button>
{% endfor %}
</form>
</main></body></html>
"""


def _default_clients(redirect_uris: Iterable[str]) -> dict[str, DemoClient]:
    uris = tuple(redirect_uris)
    return {
        CLI_CLIENT_ID: DemoClient(CLI_CLIENT_ID, None, (), ("password",)),
        WEB_CLIENT_ID: DemoClient(WEB_CLIENT_ID, WEB_CLIENT_SECRET, uris,
                                  ("authorization_code", "password", "refresh_token")),
    }


def create_idp_app(issuer: str, *, env: str = "development",
                   personas: Mapping[str, Persona] | None = None,
                   authorities: Mapping[str, str] | None = None,
                   redirect_uris: Iterable[str] = (),
                   clients: Mapping[str, DemoClient] | None = None) -> Flask:
    """The development identity provider as a Flask app.

    ``issuer``: the URL it is served at (no trailing slash needed).
    ``authorities``: authority id to organisation name, for the
    ``authority-admin:<id>`` personas (any id is accepted).
    ``redirect_uris``: allowed for the ``federator-web`` client (browser sign-in).
    Raises ``RuntimeError`` in production.
    """
    if env == "production" or os.environ.get("FEDERATOR_ENV") == "production":
        raise RuntimeError("the development identity provider cannot run in production")

    state = DevIdentityProvider(
        issuer=issuer.rstrip("/"),
        personas=dict(PERSONAS if personas is None else personas),
        authorities=dict(authorities or {}),
        clients=dict(clients) if clients is not None else _default_clients(redirect_uris),
    )

    app = Flask(__name__)
    app.config["OAUTH2_TOKEN_EXPIRES_IN"] = {"password": TOKEN_LIFETIME_S,
                                             "authorization_code": TOKEN_LIFETIME_S}
    server = AuthorizationServer(app, query_client=state.clients.get,
                                 save_token=lambda token, req: None)
    server.demo_idp = state

    def generate_token(grant_type, client, user=None, scope=None, expires_in=None,
                       include_refresh_token=True):
        token = {
            "access_token": state.issue_access_token(
                user, client_id=client.get_client_id(), scope=scope or None),
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME_S,
        }
        if scope:
            token["scope"] = scope
        if include_refresh_token and grant_type in ("authorization_code", "refresh_token"):
            token["refresh_token"] = state.new_refresh_token(
                client.get_client_id(), user.username, scope or "")
        return token

    server.register_token_generator("default", generate_token)
    server.register_grant(_PasswordGrant)
    server.register_grant(_CodeGrant, [_PkceS256(required=True)])
    server.register_grant(_RefreshGrant)
    app.extensions["federator_demo_idp"] = state

    @app.after_request
    def _no_store(response):
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    @app.get("/.well-known/openid-configuration")
    def discovery():
        return jsonify(state.discovery())

    @app.get("/jwks.json")
    @app.get("/.well-known/jwks.json")
    def jwks():
        return jsonify(state.jwks())

    @app.post("/token")
    def token():
        return server.create_token_response()

    @app.get("/authorize")
    def authorize():
        try:
            server.get_consent_grant(end_user=None)
        except OAuth2Error as error:
            return server.handle_error_response(None, error)
        shown = list(state.personas.values())
        shown += [state.persona(f"authority-admin:{a}") for a in state.authorities]
        action = "/authorize?" + urlencode(list(request.args.items(multi=True)))
        return render_template_string(_LOGIN_PAGE, personas=shown, action=action,
                                      client_id=request.args.get("client_id", ""))

    @app.post("/authorize")
    def authorize_confirm():
        persona = state.persona(request.form.get("persona", ""))
        if persona is None:
            return jsonify({"error": "access_denied",
                            "error_description": "unknown persona"}), 400
        try:
            grant = server.get_consent_grant(end_user=persona)
        except OAuth2Error as error:
            return server.handle_error_response(None, error)
        return server.create_authorization_response(grant_user=persona, grant=grant)

    @app.get("/userinfo")
    def userinfo():
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return _unauthorized()
        try:
            claims = state.verify_access_token(header[len("Bearer "):].strip())
        except (JoseError, ValueError):
            return _unauthorized()
        keep = ("sub", "name", "email", "roles", "organisation", "job_title", "authority")
        return jsonify({k: claims[k] for k in keep if k in claims})

    @app.get("/")
    def index():
        return jsonify({"service": "federator demo identity provider",
                        "issuer": state.issuer,
                        "personas": [*sorted(state.personas),
                                     "authority-admin:<authority id>"]})

    return app


def _unauthorized():
    response = jsonify({"error": "invalid_token"})
    response.status_code = 401
    response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return response


def fetch_token(idp_url: str, persona: str, *, password: str = DEMO_PASSWORD,
                client_id: str = CLI_CLIENT_ID, timeout: float = 10.0) -> str:
    """Get an access token from a running development identity provider with
    the password grant (what ``federator demo token`` does). Raises
    ``RuntimeError`` with the provider's error when refused."""
    config = requests.get(f"{idp_url.rstrip('/')}/.well-known/openid-configuration",
                          timeout=timeout)
    config.raise_for_status()
    response = requests.post(
        config.json()["token_endpoint"],
        data={"grant_type": "password", "username": persona, "password": password,
              "client_id": client_id},
        timeout=timeout,
    )
    if response.status_code != 200:
        try:
            body = response.json()
        except ValueError:
            body = {"error": response.text[:200]}
        raise RuntimeError(f"token refused ({response.status_code}): "
                           f"{body.get('error')}: {body.get('error_description', '')}")
    return response.json()["access_token"]


__all__ = [
    "AUDIENCE",
    "CLI_CLIENT_ID",
    "WEB_CLIENT_ID",
    "WEB_CLIENT_SECRET",
    "DemoClient",
    "DevIdentityProvider",
    "create_idp_app",
    "fetch_token",
]
