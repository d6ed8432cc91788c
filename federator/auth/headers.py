"""Security headers on every response.

- A strict Content-Security-Policy: scripts, styles, fonts and images from this
  origin only; no inline script except a tag carrying this response's nonce
  (``csp_nonce()`` in templates; the GOV.UK template takes it as ``cspNonce``).
- HSTS, ``frame-ancestors 'none'`` (and ``X-Frame-Options: DENY``), nosniff,
  no referrer.
- ``Cache-Control: no-store`` on every view marked with :func:`no_store` (every
  page that shows a child) and on any response that does not set its own.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, g, request

F = TypeVar("F", bound=Callable[..., Any])
NO_STORE = "_federator_no_store"


def no_store(view: F) -> F:
    """Mark a view whose responses must never be stored by a browser or proxy."""
    setattr(view, NO_STORE, True)
    return view


def csp_nonce() -> str:
    """This response's script nonce (the same value for the whole request)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(18)
    return str(g.csp_nonce)


def origin(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def content_security_policy(nonce: str | None, form_targets: Iterable[str] = ()) -> str:
    """The policy. ``form_targets``: origins a form may post or redirect to (the
    identity provider, for signing out there)."""
    scripts = "'self'" + (f" 'nonce-{nonce}'" if nonce else "")
    forms = " ".join(["'self'", *form_targets])
    return "; ".join((
        "default-src 'self'",
        f"script-src {scripts}",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        f"form-action {forms}",
        "frame-ancestors 'none'",
    ))


def security_headers(nonce: str | None, *, form_targets: Iterable[str] = (),
                     hsts: bool = True) -> dict[str, str]:
    headers = {
        "Content-Security-Policy": content_security_policy(nonce, form_targets),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        # same-origin, not no-referrer: over https Flask-WTF refuses a form post whose
        # Referer is missing or another origin's (WTF_CSRF_SSL_STRICT), so browsers must
        # send it to the broker itself; no other site is ever sent one (issue 22)
        "Referrer-Policy": "same-origin",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    }
    if hsts:
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    return headers


def init_headers(app: Flask, *, identity_provider: str | None) -> None:
    targets = tuple(o for o in (origin(identity_provider),) if o)
    app.jinja_env.globals["csp_nonce"] = csp_nonce

    @app.after_request
    def _secure(response: Response) -> Response:
        nonce = g.get("csp_nonce")
        for name, value in security_headers(nonce, form_targets=targets).items():
            response.headers[name] = value
        view = current_app.view_functions.get(request.endpoint or "")
        if view is not None and getattr(view, NO_STORE, False):
            response.headers["Cache-Control"] = "no-store"
            response.headers["Pragma"] = "no-cache"
        elif "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "no-store"
        return response
