"""A FHIR endpoint's policy on the registry pages (Flask's test client on the real
app and database): set by the authority's admin, errors on the field, shown to
the broker admin who approves it, and holding back less sent back for approval."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from support.web_client import HTML, app_on_fresh_database, pass_check, signed_in, token

pytestmark = pytest.mark.integration

app = pytest.fixture(app_on_fresh_database, name="app")
FLAG = "https://example.org/CodeSystem/local-flags|DV-SHIELD"


def registration(**extra: Any) -> dict[str, Any]:
    return {"name": "Leeds Community Health", "code": "RXX", "coverage": "national",
            "protocol": "fhir-r4", "url": "http://127.0.0.1:9/R4", "timeout_ms": "3000",
            "contact": "ict@leeds.example", "token_url": "http://127.0.0.1:9/token",
            "client_id": "federator", "client_secret": "s3cret-0123456789abcdef",
            "include_default": "yes", **extra}


def post(client: FlaskClient, path: str, **fields: Any) -> Any:
    return client.post(path, headers=HTML,
                       data={"csrf_token": token(client, path), **registration(**fields)})


def policy_of(app: Flask) -> Any:
    shown = app.extensions["federator"].registry.describe_one("leeds-health")
    return shown and shown["policy"], shown and shown["status"]


def test_the_policy_is_set_on_the_form_and_a_bad_code_is_named(app: Flask) -> None:
    admin = signed_in(app, "authority-admin", "leeds-health")
    bad = post(admin, "/registry/endpoints/new", sensitive_codes="788122004\n788122005",
               restricted_labels="R")
    body = bad.get_data(as_text=True)
    assert bad.status_code == 422
    assert 'href="#sensitive_codes"' in body and "not a SNOMED CT concept id" in body
    assert 'href="#restricted_labels"' in body
    assert app.extensions["federator"].registry.get("leeds-health") is None
    saved = post(admin, "/registry/endpoints/new", sensitive_codes="931821000000105\n",
                 restricted_labels=FLAG, restricted_route="the named nurse, 0100 000 0001")
    assert saved.status_code == 303, saved.get_data(as_text=True)
    assert policy_of(app) == ({"sensitive_codes": ["http://snomed.info/sct|931821000000105"],
                               "restricted_labels": [FLAG],
                               "restricted_route": "the named nurse, 0100 000 0001"},
                              "pending")
    broker = signed_in(app, "broker-admin")
    page = broker.get("/registry/endpoints/leeds-health", headers=HTML).get_data(as_text=True)
    assert FLAG in page and "the named nurse" in page and "931821000000105" in page
    form = admin.get("/registry/endpoints/leeds-health/change",
                     headers=HTML).get_data(as_text=True)
    assert FLAG in form and "http://snomed.info/sct|931821000000105" in form


def test_holding_back_less_on_the_form_needs_approval_again(app: Flask) -> None:
    admin = signed_in(app, "authority-admin", "leeds-health")
    assert post(admin, "/registry/endpoints/new", restricted_labels=FLAG).status_code == 303
    pass_check(app, "leeds-health")
    broker = signed_in(app, "broker-admin")
    path = "/registry/endpoints/leeds-health/approve"
    assert broker.post(path, headers=HTML, data={"csrf_token": token(
        broker, "/registry/endpoints/leeds-health"), "reason": ""}).status_code == 303
    assert policy_of(app)[1] == "active"
    change = "/registry/endpoints/leeds-health/change"
    assert post(admin, change, restricted_labels=FLAG, client_secret="",
                sensitive_codes="931821000000105").status_code == 303
    assert policy_of(app)[1] == "active"  # holds back more: at once
    assert post(admin, change, include_default="no", restricted_labels=FLAG,
                client_secret="").status_code == 303
    assert policy_of(app)[1] == "pending"
    page = admin.get("/registry/endpoints/leeds-health", headers=HTML).get_data(as_text=True)
    assert "sensitive codes no longer held back" in page
