"""The pages over HTTP (Flask's test client on the real app and database):
access, HTML vs JSON errors, refused form posts audited, no-store."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from federator import create_app
from federator.config import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def app(tmp_path: Path, database_url: str) -> Iterator[Flask]:
    flask_app = create_app(Settings(env="development", instance_dir=tmp_path,
                                    database_url=database_url).checked(), migrate=True)
    yield flask_app
    flask_app.extensions["federator"].engine.dispose()


def signed_in(app: Flask, roles: tuple[str, ...] = ("practitioner",)) -> Any:
    client = app.test_client()
    with client.session_transaction() as s:
        s["principal"] = {"id": "user-1", "name": "Pat", "roles": list(roles),
                          "organisation": "Leeds", "job_title": "Social worker"}
        s["signed_in_at"] = s["last_seen"] = time.time()
    return client


HTML = {"Accept": "text/html"}


def test_form_page_is_no_store_and_anonymous_are_sent_to_sign_in(app: Flask) -> None:
    page = signed_in(app).get("/lookups/new", headers=HTML)
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    assert b"govuk-frontend.min.css" in page.data
    anonymous = app.test_client().get("/lookups/new", headers=HTML)
    assert anonymous.status_code == 302 and "/sign-in" in anonymous.headers["Location"]


def test_wrong_role_and_unknown_pages_get_html_but_the_api_keeps_json(app: Flask) -> None:
    auditor = signed_in(app, ("auditor",))
    refused = auditor.get("/lookups/new", headers=HTML)
    assert refused.status_code == 403 and refused.content_type.startswith("text/html")
    assert b"You cannot see this page" in refused.data
    missing = auditor.get("/no-such-page", headers=HTML)
    assert missing.status_code == 404 and missing.content_type.startswith("text/html")
    api = auditor.get("/api/v1/no-such", headers=HTML)
    assert api.status_code == 404 and api.is_json


def test_a_form_with_errors_is_refused_audited_and_kept(app: Flask) -> None:
    client = signed_in(app)
    form = client.get("/lookups/new", headers=HTML).get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form) or \
        re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token
    response = client.post("/lookups/new", headers=HTML, data={
        "csrf_token": token.group(1), "nhs_number": "9434765918",
        "purpose": "Finding services already involved", "basis_type": "consent",
        "given_on": ["31", "2", "2026"]})
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "govuk-error-summary" in body and 'href="#nhs_number"' in body
    assert 'href="#given_on-day"' in body and "must be a real date" in body
    assert 'value="9434765918"' in body
    trail = app.extensions["federator"].trail
    refused = trail.records(event="lookup.refused")
    assert refused and "child.nhs_number" in refused[-1]["fields"]
    assert "9434765918" not in str(refused)
    assert trail.records(event="lookup.requested") == []
