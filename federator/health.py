"""Liveness, readiness and the broker's public keys."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_smorest import Blueprint
from sqlalchemy import text

from federator.auth.access import public

blp = public(Blueprint("health", __name__, description="Health and keys"))


def _json(properties: dict[str, Any]) -> dict[str, Any]:
    """A documented JSON answer (without one the error schema would apply)."""
    return {"description": "OK", "content": {"application/json": {"schema": {
        "type": "object", "properties": properties, "required": sorted(properties)}}}}


@blp.route("/healthz")
@blp.doc(responses={"200": _json({"status": {"type": "string"}})})
def healthz() -> Any:
    """The process is up."""
    return {"status": "ok"}


@blp.route("/readyz")
@blp.doc(responses={s: _json({"status": {"type": "string"}, "checks": {"type": "object"}})
                    for s in ("200", "503")})
def readyz() -> Any:
    """The database and the shared state are reachable."""
    ext = current_app.extensions["federator"]
    checks = {"database": _database_ok(ext.engine), "shared_state": ext.state.ping()}
    ready = all(checks.values())
    return {"status": "ok" if ready else "unavailable", "checks": checks}, 200 if ready else 503


@blp.route("/.well-known/jwks.json")
@blp.doc(responses={"200": _json({"keys": {"type": "array", "items": {"type": "object"}}})})
def jwks() -> Any:
    """The keys adapters use to verify the broker's signed requests."""
    return current_app.extensions["federator"].keys.jwks(), 200, {
        "Cache-Control": "public, max-age=300"}


def _database_ok(engine: Any) -> bool:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
