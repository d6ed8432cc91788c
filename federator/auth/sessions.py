"""Browser sessions: cookie settings, idle time-out, absolute lifetime, and
roles re-read from the identity provider.

The session is server-side (``federator.auth.session_store``): the cookie holds
a random id; the record holds who is signed in (``principal``), when
(``signed_in_at``), when they were last seen (``last_seen``), when their roles
were last read from the provider (``roles_checked_at``) and the provider's
tokens (``tokens``: access, refresh and ID token, for re-reading roles and for
signing out at the provider). The record's time to live is the idle time-out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import requests
from flask import Flask, current_app, g, request, session
from flask.typing import ResponseReturnValue

from federator.audit.trail import AuditUnavailable
from federator.auth.access import PAGES, session_principal
from federator.auth.pages import roles_unconfirmed, sessions_unavailable
from federator.auth.refresh import Client, Withdrawn, due, reread
from federator.auth.session_store import (
    REFRESHING,
    ServerSession,
    ServerSessionInterface,
    new_id,
    record_key,
)
from federator.auth.tokens import InvalidToken, ProviderUnavailable, principal_from_claims
from federator.config import Settings
from federator.names import AUTH_SIGNED_OUT
from federator.state import SharedState, StateUnavailable

log = logging.getLogger(__name__)

#: How often ``last_seen`` is rewritten (saves a write on every request).
TOUCH_EVERY_S = 30
#: Blueprints whose requests read the session besides the pages (``PAGES``).
SESSION_BLUEPRINTS = frozenset({"signin", "web_home"})


def cookie_config(settings: Settings) -> dict[str, object]:
    """Flask settings for the session cookie. ``Secure`` is off only in
    development served over plain http (the demo on loopback)."""
    secure = not (settings.development and settings.public_url.startswith("http://"))
    return {
        # ``__Host-`` makes browsers refuse the cookie unless it is Secure, host-only, path /.
        "SESSION_COOKIE_NAME": "__Host-federator" if secure else "federator_session",
        "SESSION_COOKIE_SECURE": secure,
        "SESSION_COOKIE_HTTPONLY": True,
        # Lax, not Strict: the identity provider's redirect back to /auth/callback is a
        # cross-site top-level navigation and must carry the cookie holding state and nonce.
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_PATH": "/",
        "SESSION_REFRESH_EACH_REQUEST": False,
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=settings.session_max_hours),
    }


def expiry(now: float, signed_in_at: float | None, last_seen: float | None, *,
           idle_s: float, absolute_s: float) -> str | None:
    """Why a session has ended (``"idle"`` or ``"lifetime"``), or None if it is live."""
    if not isinstance(signed_in_at, int | float) or not isinstance(last_seen, int | float):
        return "lifetime"
    if now - signed_in_at >= absolute_s or signed_in_at > now + 60:
        return "lifetime"
    if now - last_seen >= idle_s:
        return "idle"
    return None


def start_session(principal: dict[str, object], tokens: dict[str, Any],
                  claims: dict[str, Any]) -> None:
    """A fresh session, under a new id, for someone who has just signed in
    (``claims``: what sign-in read, kept for re-reading roles)."""
    session.clear()
    if isinstance(session, ServerSession):
        session.regenerate()
    now = time.time()
    session.permanent = True
    session["principal"] = principal
    session["signed_in_at"] = session["last_seen"] = session["roles_checked_at"] = now
    session["tokens"] = tokens
    session["claims"] = claims


def needs_session() -> bool:
    """Whether this request's answer depends on who is signed in."""
    return request.blueprint in PAGES or request.blueprint in SESSION_BLUEPRINTS


def init_sessions(app: Flask, settings: Settings, state: SharedState) -> None:
    app.config.update(cookie_config(settings))
    idle_s = settings.session_idle_minutes * 60
    absolute_s = settings.session_max_hours * 3600
    refresh_s = settings.session_refresh_minutes * 60
    interface = ServerSessionInterface(state, ttl_s=idle_s + TOUCH_EVERY_S,
                                       tokens_ttl_s=absolute_s)
    app.session_interface = interface
    http = requests.Session()
    http.trust_env = False
    if settings.ca_bundle:
        http.verify = settings.ca_bundle
    client = Client(settings.oidc_client_id, settings.oidc_client_secret)

    @app.before_request
    def _check_session() -> ResponseReturnValue | None:
        if getattr(session, "unavailable", False):
            if not needs_session():
                return None
            return sessions_unavailable(form_sent=request.method == "POST")
        if "principal" not in session:
            return None
        now = time.time()
        reason = expiry(now, session.get("signed_in_at"), session.get("last_seen"),
                        idle_s=idle_s, absolute_s=absolute_s)
        if reason is None and needs_session() and due(
                now, session.get("roles_checked_at"), session.get("signed_in_at"), refresh_s):
            try:
                lock = _refreshing(state)
                if lock is None:
                    # another request of this session is re-reading the roles (a
                    # refresh token is used once): go on, and write nothing over it
                    return None
                try:
                    reason = _reread_roles(interface, http, client, settings, now)
                finally:
                    state.delete(lock)
            except StateUnavailable:
                return sessions_unavailable(form_sent=request.method == "POST")
            except ProviderUnavailable as e:
                log.warning("roles could not be re-read: %s", e)
                return roles_unconfirmed()
        if reason is not None:
            if reason in WITHDRAWN:
                _audit_withdrawn(WITHDRAWN[reason])
            session.clear()
            g.session_ended = reason
            return None
        if now - float(session["last_seen"]) >= TOUCH_EVERY_S:
            session["last_seen"] = now
        return None

    @app.after_request
    def _persist_session(response: Any) -> Any:
        # Written here rather than in save_session, so that a session that cannot be
        # kept answers 503 instead of appearing to work and being lost.
        if isinstance(session, ServerSession) and not session.unavailable:
            try:
                interface.persist(session)
            except StateUnavailable:
                body, status, headers = sessions_unavailable()
                return current_app.make_response((body, status, headers))
        return response


#: Seconds one request may take re-reading a session's roles before another may.
REFRESH_LOCK_S = 30


def _refreshing(state: SharedState) -> str | None:
    """Take the right to re-read this session's roles: the key to delete when done,
    or None when another request has it."""
    sid = getattr(session, "sid", None)
    key = record_key(sid if sid is not None else new_id()) + REFRESHING
    return key if state.put(key, "1", REFRESH_LOCK_S, only_if_absent=True) else None


#: Why the provider's answer ended a session, as audited (``auth.signed_out``).
WITHDRAWN = {"withdrawn": "the identity provider no longer vouches for the session",
             "roles": "no role left at the identity provider"}


def _audit_withdrawn(reason: str) -> None:
    """Record that the broker signed someone out on the provider's word (a session
    ends whether or not this can be written)."""
    principal = session_principal()
    if principal is None:
        return
    try:
        current_app.extensions["federator"].trail.append(
            AUTH_SIGNED_OUT, actor_id=principal.id, actor_role=None,
            actor_organisation=principal.organisation, reason=reason)
    except AuditUnavailable:
        log.warning("a session ended by the provider could not be audited")


def _renewed_id_claims(before: Mapping[str, Any], after: Mapping[str, Any],
                       client_id: str) -> dict[str, Any]:
    """The claims of the ID token a refresh grant gave (checked), or none."""
    fresh = after.get("id_token")
    if not fresh or fresh == before.get("id_token"):
        return {}
    validator = current_app.extensions["federator"].tokens
    if validator is None:
        return {}
    return dict(validator.id_token_claims(str(fresh), client_id))


def _reread_roles(interface: ServerSessionInterface, http: requests.Session, client: Client,
                  settings: Settings, now: float) -> str | None:
    """Re-read the user's claims; why the session ends (``"withdrawn"``,
    ``"roles"``), or None with the principal brought up to date."""
    from federator.auth.oidc import oidc_metadata, session_data

    held = session["principal"]
    try:
        before = interface.tokens(session)
        answered, tokens = reread(http, oidc_metadata(), before, client)
        if answered.get("sub") != held.get("id"):
            raise Withdrawn("the provider answered for another subject")
        # What the provider says now, over what sign-in said: but the roles and the
        # authority only from the answer (else withdrawn ones would be kept). The
        # answer is userinfo's over a new ID token's, when the refresh grant gave one
        # (Entra ID's userinfo has no app roles: its ID token has).
        renewed = _renewed_id_claims(before, tokens, client.client_id)
        if renewed and renewed.get("sub") != held.get("id"):
            raise Withdrawn("the new ID token is for another subject")
        kept = {k: v for k, v in (session.get("claims") or {}).items()
                if k not in (settings.roles_claim.split(".")[0],
                             settings.authority_claim.split(".")[0])}
        claims = {**kept, **renewed, **answered}
        principal = principal_from_claims(
            claims, roles_claim=settings.roles_claim,
            organisation_claim=settings.organisation_claim,
            authority_claim=settings.authority_claim, role_map=settings.role_mapping,
            role_selector=settings.role_selection)
    except (Withdrawn, InvalidToken) as e:
        log.info("session ended: the provider no longer vouches for it (%s)", e)
        return "withdrawn"
    if not principal.roles:
        return "roles"
    interface.put_tokens(session, tokens)  # first: a spent refresh token is never kept
    session["principal"] = session_data(principal)
    session["roles_checked_at"] = now
    return None
