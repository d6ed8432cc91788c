"""The web pages through Flask's test client: the real app on a fresh database
(development settings), a client signed in with a role, and a page's CSRF token."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from federator import create_app
from federator.auth.session_store import (
    TOKENS,
    ServerSessionInterface,
    record_key,
    well_formed,
)
from federator.config import Settings

#: What a browser asks for: the pages answer HTML (the API answers JSON).
HTML = {"Accept": "text/html"}


def app_on_fresh_database(tmp_path: Path, database_url: str) -> Iterator[Flask]:
    """The real app on the ``database_url`` fixture's new database; a test module
    makes it its fixture: ``app = pytest.fixture(app_on_fresh_database, name="app")``."""
    flask_app = create_app(Settings(env="development", instance_dir=tmp_path,
                                    database_url=database_url).checked(), migrate=True)
    yield flask_app
    flask_app.extensions["federator"].engine.dispose()


def signed_in(app: Flask, role: str, authority: str | None = None) -> FlaskClient:
    """A test client whose session holds a signed-in principal with this one role."""
    client = app.test_client()
    with client.session_transaction() as s:
        s["principal"] = {"id": f"{role}-{authority}", "name": "Jo Admin", "roles": [role],
                          "organisation": "Leeds", "job_title": "Administrator",
                          "authority": authority}
        s["signed_in_at"] = s["last_seen"] = time.time()
    return client


def session_record(app: Flask, cookie: str | None) -> dict[str, Any]:
    """What the broker holds server-side for a session cookie's value ({} for none)."""
    if not well_formed(cookie):
        return {}
    assert cookie is not None
    interface = app.session_interface
    assert isinstance(interface, ServerSessionInterface)
    [raw] = interface.state.get_many([record_key(cookie)])
    return dict(interface.serializer.loads(raw)) if raw else {}


def session_tokens(app: Flask, cookie: str) -> dict[str, Any]:
    """The provider's tokens the broker holds for a session (as last renewed)."""
    interface = app.session_interface
    assert isinstance(interface, ServerSessionInterface)
    [raw] = interface.state.get_many([record_key(cookie) + TOKENS])
    return dict(interface.serializer.loads(raw)) if raw else session_record(
        app, cookie).get("tokens", {})


def rewrite_session(app: Flask, cookie: str, **changes: Any) -> None:
    """Change a live session's record in place (as time passing would)."""
    interface = app.session_interface
    assert isinstance(interface, ServerSessionInterface)
    held = {**session_record(app, cookie), **changes}
    interface.state.put(record_key(cookie), interface.serializer.dumps(held), interface.ttl_s)


def token(client: FlaskClient, path: str) -> str:
    """The CSRF token of the form on the page at ``path`` (the page must answer 200)."""
    page = client.get(path, headers=HTML)
    assert page.status_code == 200, page.get_data(as_text=True)[:500]
    found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"',
                      page.get_data(as_text=True)) or re.search(
        r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert found
    return found.group(1)


def pass_check(app: Flask, endpoint_id: str) -> None:
    """Record a passing conformance check of the endpoint as it is now: these
    pages' endpoints point at nothing (test_registry_approval.py and
    test_web_registry_federation.py approve after real checks of real kits)."""
    registry = app.extensions["federator"].registry
    found = registry.checkable(endpoint_id)
    assert found is not None
    registry.health.record(endpoint_id, "conformance", True, None,
                           [{"name": "url_safe", "passed": True, "detail": "test"}],
                           target=found[1])
