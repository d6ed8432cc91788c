"""Access control, attached per blueprint, enforced in one place.

Every blueprint registers here as public or with the roles it admits; the
app refuses to start when a route belongs to neither (and a test checks it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, current_app, g, redirect, request, session, url_for
from flask import abort as flask_abort
from flask_smorest import abort

from federator.auth.principal import Principal
from federator.auth.tokens import InvalidToken, ProviderUnavailable, TokenValidator

PUBLIC: tuple[str, ...] = ()
ACCESS: dict[str, tuple[str, ...]] = {}
#: Blueprints authenticated by bearer token (the JSON API): exempt from CSRF checks.
BEARER: set[str] = set()
#: Blueprints of pages, authenticated by the signed-in session.
PAGES: set[str] = set()


def public(blueprint: Blueprint) -> Blueprint:
    ACCESS[blueprint.name] = PUBLIC
    return blueprint


def require_roles(blueprint: Blueprint, *roles: str) -> Blueprint:
    """Every route of ``blueprint`` needs a bearer token with one of ``roles``."""
    if not roles:
        raise ValueError("name at least one role, or use public()")
    ACCESS[blueprint.name] = roles
    BEARER.add(blueprint.name)

    @blueprint.before_request
    def _authorise() -> None:
        g.principal, g.role = authenticate(roles)

    return blueprint


def require_page_roles(blueprint: Blueprint, *roles: str) -> Blueprint:
    """Every page of ``blueprint`` needs a signed-in user with one of ``roles``.

    The session holds the principal after web sign-in (``federator.auth.oidc``);
    anonymous visitors are sent to sign in and come back afterwards; a signed-in
    user without the role gets a 403 page.
    """
    if not roles:
        raise ValueError("name at least one role, or use public()")
    ACCESS[blueprint.name] = roles
    PAGES.add(blueprint.name)

    @blueprint.before_request
    def _authorise_page() -> Any:
        principal = session_principal()
        if principal is None:
            return redirect(url_for("signin.sign_in", next=request.full_path))
        role = next((r for r in roles if r in principal.roles), None)
        if role is None:
            flask_abort(403)
        g.principal, g.role = principal, role
        return None

    return blueprint


def session_principal() -> Principal | None:
    """The signed-in user from the session, if any (set by web sign-in)."""
    data = session.get("principal")
    if not isinstance(data, dict):
        return None
    try:
        return Principal(id=data["id"], name=data["name"], roles=tuple(data["roles"]),
                         organisation=data["organisation"],
                         job_title=data.get("job_title", ""), authority=data.get("authority"),
                         email=data.get("email") or "", family_name=data.get("family_name") or "")
    except (KeyError, TypeError):
        return None


def authenticate(roles: tuple[str, ...]) -> tuple[Any, str]:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        abort(401, message="Sign in: send a bearer token from the identity provider.",
              headers={"WWW-Authenticate": 'Bearer realm="federator"'})
    validator: TokenValidator | None = current_app.extensions["federator"].tokens
    if validator is None:
        abort(503, message="No identity provider is configured.")
    try:
        principal = validator.principal(header[len("Bearer "):].strip())
    except InvalidToken as e:
        abort(401, message=str(e),
              headers={"WWW-Authenticate": 'Bearer realm="federator", error="invalid_token"'})
    except ProviderUnavailable:
        abort(503, message="The identity provider cannot be reached; try again shortly.")
    role = next((r for r in roles if r in principal.roles), None)
    if role is None:
        abort(403, message=f"This needs the role: {' or '.join(roles)}.")
    return principal, role


def unguarded_endpoints(app: Any, blueprint_of: Callable[[str], str | None]) -> list[str]:
    """Endpoints whose blueprint has no access rule (``static`` is public)."""
    missing = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        name = blueprint_of(rule.endpoint)
        if name is None or name not in ACCESS:
            missing.append(rule.endpoint)
    return missing
