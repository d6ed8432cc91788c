"""Browser sessions: cookie settings, idle time-out and absolute lifetime.

The session is Flask's signed cookie; it holds only who is signed in
(``principal``), when (``signed_in_at``), when they were last seen
(``last_seen``) and the ID token for signing out at the provider.
"""

from __future__ import annotations

import time
from datetime import timedelta

from flask import Flask, g, session

from federator.config import Settings

#: How often ``last_seen`` is rewritten (saves re-sending the cookie on every request).
TOUCH_EVERY_S = 30


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


def start_session(principal: dict[str, object], id_token: str | None) -> None:
    """A fresh session for someone who has just signed in."""
    session.clear()
    now = time.time()
    session.permanent = True
    session["principal"] = principal
    session["signed_in_at"] = now
    session["last_seen"] = now
    if id_token:
        session["id_token"] = id_token


def init_sessions(app: Flask, settings: Settings) -> None:
    app.config.update(cookie_config(settings))
    idle_s = settings.session_idle_minutes * 60
    absolute_s = settings.session_max_hours * 3600

    @app.before_request
    def _expire_sessions() -> None:
        if "principal" not in session:
            return
        now = time.time()
        reason = expiry(now, session.get("signed_in_at"), session.get("last_seen"),
                        idle_s=idle_s, absolute_s=absolute_s)
        if reason is not None:
            session.clear()
            g.session_ended = reason
            return
        if now - float(session["last_seen"]) >= TOUCH_EVERY_S:
            session["last_seen"] = now
