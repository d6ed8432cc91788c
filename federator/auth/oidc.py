"""Web sign-in with OpenID Connect: authorization code flow with PKCE, ``state``
and ``nonce`` checked (authlib's Flask client), against the provider named by
``FEDERATOR_OIDC_ISSUER`` and found through its discovery document.

- ``GET /sign-in?next=/path``: sends the browser to the provider.
- ``GET /auth/callback``: the provider sends it back; the ID token is checked,
  the claims (ID token, then userinfo) give the principal kept in the session.
- ``POST /sign-out``: ends the session, and the provider's session too when it
  publishes an ``end_session_endpoint``; ``GET /signed-out`` says so.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import OAuth
from flask import (
    Blueprint,
    Flask,
    current_app,
    redirect,
    request,
    session,
    url_for,
)
from joserfc.errors import JoseError

from federator.audit.trail import AuditUnavailable
from federator.auth.access import public, session_principal
from federator.auth.pages import page, sessions_unavailable
from federator.auth.principal import Principal
from federator.auth.refresh import tokens_from
from federator.auth.session_store import ServerSession, ServerSessionInterface
from federator.auth.sessions import start_session
from federator.auth.tokens import (
    InvalidToken,
    ProviderUnavailable,
    acr_problem,
    principal_from_claims,
)
from federator.config import Settings
from federator.names import AUTH_REFUSED, AUTH_SIGNED_IN, AUTH_SIGNED_OUT
from federator.state import StateUnavailable

log = logging.getLogger(__name__)

blp = public(Blueprint("signin", __name__))
CLIENT = "idp"

def safe_next(value: str | None) -> str:
    """A local path to return to after sign-in; anything else becomes ``/``."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or any(c in value for c in "\r\n\\"):
        return "/"
    return value.rstrip("?") or "/"


def session_data(principal: Principal) -> dict[str, Any]:
    """What ``federator.auth.access.session_principal`` reads back."""
    return {"id": principal.id, "name": principal.name, "roles": list(principal.roles),
            "organisation": principal.organisation, "job_title": principal.job_title,
            "authority": principal.authority, "email": principal.email,
            "family_name": principal.family_name}


def init_signin(app: Flask, settings: Settings) -> None:
    oauth = OAuth(app)
    if settings.oidc_issuer:
        oauth.register(
            CLIENT,
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret,
            server_metadata_url=f"{settings.oidc_issuer}/.well-known/openid-configuration",
            client_kwargs={
                "scope": settings.oidc_scopes,
                "code_challenge_method": "S256",
                "token_endpoint_auth_method": (
                    "client_secret_basic" if settings.oidc_client_secret else "none"),
                "timeout": 10,
                **({"verify": settings.ca_bundle} if settings.ca_bundle else {}),
            },
        )
    app.register_blueprint(blp)


def _client() -> Any:
    return current_app.extensions["authlib.integrations.flask_client"].create_client(CLIENT)


def oidc_metadata() -> dict[str, Any]:
    """The provider's discovery document (fetched once, then cached by authlib);
    ``ProviderUnavailable`` when it cannot be fetched, or no provider is configured."""
    client = _client()
    if client is None:
        raise ProviderUnavailable("no identity provider is configured")
    try:
        return dict(client.load_server_metadata())
    except (requests.RequestException, ValueError, KeyError) as e:
        raise ProviderUnavailable("identity provider unreachable") from e


def _settings() -> Settings:
    return current_app.extensions["federator"].settings


def _audit(event: str, principal: Principal, role: str | None, **fields: Any) -> None:
    current_app.extensions["federator"].trail.append(
        event, actor_id=principal.id, actor_role=role,
        actor_organisation=principal.organisation, **fields)


def _unavailable() -> tuple[str, int, dict[str, str]]:
    return page("Sign-in is not available",
                "The identity provider cannot be reached just now. Try again in a few minutes.",
                status=503)


@blp.get("/sign-in")
def sign_in() -> Any:
    client = _client()
    if client is None:
        return page("Sign-in is not available",
                    "No identity provider is configured for this service.", status=503)
    target = safe_next(request.args.get("next"))
    principal = session_principal()
    if principal is not None and principal.roles:
        return redirect(target)
    session["next"] = target
    settings = _settings()
    extra = {"acr_values": " ".join(settings.required_acr)} if settings.required_acr else {}
    try:
        return client.authorize_redirect(f"{settings.public_url}/auth/callback", **extra)
    except (requests.RequestException, ValueError, KeyError) as e:
        log.warning("sign-in could not start: %s", type(e).__name__)
        return _unavailable()


@blp.get("/auth/callback")
def callback() -> Any:
    client = _client()
    if client is None:
        return page("Sign-in is not available",
                    "No identity provider is configured for this service.", status=503)
    settings = _settings()
    again = ("Sign in again", url_for("signin.sign_in"))
    try:
        token = client.authorize_access_token()
        metadata = client.load_server_metadata()
        if str(metadata.get("issuer", "")).rstrip("/") != settings.oidc_issuer:
            raise InvalidToken("the provider's discovery document names another issuer")
        claims = dict(token.get("userinfo") or {})
        if not claims:
            raise InvalidToken("the provider did not send an ID token")
        weak = acr_problem(claims, settings.required_acr)
        if metadata.get("userinfo_endpoint"):
            extra = dict(client.userinfo(token=token))
            if extra.get("sub") == claims.get("sub"):
                claims = {**extra, **{k: v for k, v in claims.items() if v is not None}}
        principal = principal_from_claims(
            claims, roles_claim=settings.roles_claim,
            organisation_claim=settings.organisation_claim,
            authority_claim=settings.authority_claim, role_map=settings.role_mapping,
            role_selector=settings.role_selection)
    except OAuthError as e:
        log.info("sign-in refused: %s", e.error)
        return page("Sign-in did not complete",
                    "The identity provider did not sign you in, or the sign-in link was "
                    "out of date. Nothing was changed.", status=400, link=again)
    except (InvalidToken, JoseError, ValueError) as e:
        log.warning("sign-in answer rejected: %s", type(e).__name__)
        return page("Sign-in did not complete",
                    "The identity provider's answer could not be trusted, so you were not "
                    "signed in.", status=400, link=again)
    except requests.RequestException as e:
        log.warning("identity provider unreachable during sign-in: %s", type(e).__name__)
        return _unavailable()
    target = safe_next(session.pop("next", None))
    try:
        if weak is not None:
            _audit(AUTH_REFUSED, principal, None, reason="authentication level")
            session.clear()
            return page(
                "Sign in with stronger authentication",
                f"You signed in as {principal.name}, but not with an authentication level "
                f"Federator accepts ({weak}).",
                "Sign in again with your smartcard or the strong method your organisation "
                "gives you (the identity provider must report it as one of: "
                f"{', '.join(settings.required_acr)}).", status=403, link=again)
        if not principal.roles:
            _audit(AUTH_REFUSED, principal, None, reason="no known role")
            session.clear()
            return page(
                "You cannot use Federator with this account",
                f"You signed in as {principal.name}, but your account has no Federator role "
                "(practitioner, auditor, authority administrator or broker administrator).",
                "Ask your organisation's identity administrator to give you the role your "
                "work needs.", status=403)
        _audit(AUTH_SIGNED_IN, principal, principal.roles[0], roles=list(principal.roles))
    except AuditUnavailable:
        session.clear()
        return page("Sign-in is not available",
                    "The audit trail cannot be written, so nobody can sign in just now.",
                    status=503)
    start_session(session_data(principal), tokens_from(token), claims)
    return redirect(target)


@blp.post("/sign-out")
def sign_out() -> Any:
    principal = session_principal()
    interface = current_app.session_interface
    try:
        if isinstance(session, ServerSession) and isinstance(interface, ServerSessionInterface):
            id_token = interface.tokens(session).get("id_token")
            interface.end(session)
        else:
            id_token = (session.get("tokens") or {}).get("id_token")
            session.clear()
    except StateUnavailable:
        log.warning("a session could not be ended: shared state unavailable")
        return sessions_unavailable()
    if principal is not None:
        try:
            _audit(AUTH_SIGNED_OUT, principal, principal.roles[0] if principal.roles else None)
        except AuditUnavailable:
            log.warning("sign-out could not be audited")
    done = url_for("signin.signed_out")
    client = _client()
    if client is None:
        return redirect(done)
    try:
        if client.load_server_metadata().get("end_session_endpoint"):
            settings = _settings()
            return client.logout_redirect(
                post_logout_redirect_uri=f"{settings.public_url}/signed-out",
                id_token_hint=id_token, client_id=settings.oidc_client_id)
    except (requests.RequestException, ValueError, KeyError):
        log.warning("identity provider unreachable at sign-out; signed out locally")
    return redirect(done)


@blp.get("/signed-out")
def signed_out() -> Any:
    return page("You have signed out",
                "You have signed out of Federator. Close the browser if it is shared.",
                link=("Sign in again", url_for("signin.sign_in")))
