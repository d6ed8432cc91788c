"""``federator serve``: the broker under gunicorn, after a production preflight."""

from __future__ import annotations

import runpy
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication

from federator.config import Settings
from federator.lookup.routing import Endpoint

GUNICORN_CONFIG = Path(__file__).resolve().parent.parent / "config" / "gunicorn.conf.py"


def development_refused(settings: Settings, *, allowed: bool) -> str | None:
    """Why ``federator serve`` will not serve development settings (None when it may):
    a broker started with ``FEDERATOR_ENV=development`` by mistake would make up its
    secrets, accept plain http and reach loopback endpoints."""
    if settings.development and not allowed:
        return ("refusing to serve: FEDERATOR_ENV is development (generated secrets, plain "
                "http, loopback endpoints allowed); set FEDERATOR_ENV=production, or pass "
                "--allow-development for a test on this machine")
    return None


def preflight(settings: Settings, *, workers: int, endpoints: Iterable[Endpoint]) -> list[str]:
    """Reasons the broker must not serve like this (empty when it may)."""
    if not settings.production:
        return []
    problems = []
    if workers > 1 and not settings.redis_url:
        problems.append("several workers need FEDERATOR_REDIS_URL: in-process state would "
                        "let each worker keep its own rate limits and breakers")
    if settings.oidc_issuer and not settings.oidc_issuer.startswith("https://"):
        problems.append("FEDERATOR_OIDC_ISSUER must be https in production")
    plain = sorted(e.id for e in endpoints
                   if e.status in ("active", "pending") and not e.url.startswith("https://"))
    if plain:
        problems.append(f"endpoints with http URLs: {', '.join(plain)} (https only in production)")
    return problems


class BrokerServer(BaseApplication):  # type: ignore[misc]
    """gunicorn with ``config/gunicorn.conf.py``, serving an app built once per worker."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        assert self.cfg is not None
        for key, value in runpy.run_path(str(GUNICORN_CONFIG)).items():
            if key in self.cfg.settings and value is not None:
                self.cfg.set(key, value)
        for key, value in self.options.items():
            if value is not None:
                self.cfg.set(key, value)

    def load(self) -> Any:
        from federator import create_app
        from federator.logs import configure

        configure()
        return create_app()
