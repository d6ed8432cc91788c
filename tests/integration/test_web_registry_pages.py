"""The registry pages over HTTP (Flask's test client on the real app and
database): registering, errors the GOV.UK way, changes back to pending,
suspend/resume, approval and rejection, and one authority's admin kept out of
another's endpoint."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from support.web_client import HTML, app_on_fresh_database, pass_check, signed_in, token

pytestmark = pytest.mark.integration

SECRET = "client-secret-never-shown-0123456789"

app = pytest.fixture(app_on_fresh_database, name="app")


def registration(**extra: Any) -> dict[str, Any]:
    return {"name": "Leeds Children's Services", "code": "E08000035",
            "coverage": "E08000035, E08000036", "protocol": "federator-lookup/1",
            "url": "http://127.0.0.1:9/", "timeout_ms": "3000",
            "contact": "adapters@leeds.example", **extra}


def register(client: FlaskClient, **extra: Any) -> Any:
    form = {"csrf_token": token(client, "/registry/endpoints/new"), **registration(**extra)}
    return client.post("/registry/endpoints/new", data=form, headers=HTML)


def act(client: FlaskClient, endpoint_id: str, action: str, reason: str = "") -> Any:
    path = f"/registry/endpoints/{endpoint_id}/{action}"
    return client.post(path, headers=HTML,
                       data={"csrf_token": token(client, f"/registry/endpoints/{endpoint_id}"),
                             "reason": reason})


def status_of(app: Flask, endpoint_id: str) -> str:
    shown = app.extensions["federator"].registry.describe_one(endpoint_id)
    assert shown is not None
    return str(shown["status"])


def test_an_authority_admin_registers_its_endpoint_and_it_waits_for_approval(
        app: Flask) -> None:
    admin = signed_in(app, "authority-admin", "leeds-cs")
    listing = admin.get("/registry/endpoints", headers=HTML).get_data(as_text=True)
    assert "Register your endpoint" in listing
    response = register(admin)
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/registry/endpoints/leeds-cs")
    page = admin.get("/registry/endpoints/leeds-cs", headers=HTML).get_data(as_text=True)
    assert "Your endpoint is registered" in page and ">Pending<" in page
    assert "E08000035, E08000036" in page and "http://127.0.0.1:9/" in page
    stored = app.extensions["federator"].registry.describe_one("leeds-cs")
    assert stored is not None and stored["coverage"] == ["E08000035", "E08000036"]
    assert stored["timeout_ms"] == 3000 and stored["protocol"] == "federator-lookup/1"
    trail = app.extensions["federator"].trail
    assert [r["endpoint"] for r in trail.records(event="registry.registered")] == ["leeds-cs"]
    # registered once: the form now sends the admin to the endpoint
    again = admin.get("/registry/endpoints/new", headers=HTML)
    assert again.status_code == 302 and again.headers["Location"].endswith("/leeds-cs")


def test_an_unsafe_address_and_missing_fields_are_named_and_nothing_is_stored(
        app: Flask) -> None:
    admin = signed_in(app, "authority-admin", "leeds-cs")
    response = register(admin, url="http://169.254.169.254/latest", name="",
                        timeout_ms="soon")
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "govuk-error-summary" in body and body.count("govuk-error-message") >= 2
    assert 'href="#name"' in body and "Enter the endpoint&#39;s name" in body
    assert 'href="#timeout_ms"' in body and "whole number of milliseconds" in body
    assert 'value="soon"' in body
    assert "adapters@leeds.example" in body  # kept, in its textarea
    # the schema's errors come first; then the URL is judged on its own
    response = register(admin, url="http://169.254.169.254/latest")
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'href="#url"' in body and "169.254.169.254 is a link-local address" in body
    assert 'value="http://169.254.169.254/latest"' in body
    assert app.extensions["federator"].registry.get("leeds-cs") is None


def test_fhir_credentials_are_required_stored_and_never_shown_again(app: Flask) -> None:
    admin = signed_in(app, "authority-admin", "leeds-cs")
    missing = register(admin, protocol="fhir-r4", url="http://127.0.0.1:9/R4",
                       token_url="http://127.0.0.1:9/token", client_secret=SECRET)
    body = missing.get_data(as_text=True)
    assert missing.status_code == 422
    assert SECRET not in body  # a secret is not sent back, even to be corrected
    assert 'value="http://127.0.0.1:9/token"' in body
    assert 'href="#client_id"' in body and "Enter the client ID" in body
    assert 'href="#client_secret"' not in body
    saved = register(admin, protocol="fhir-r4", url="http://127.0.0.1:9/R4",
                     token_url="http://127.0.0.1:9/token", client_id="federator",
                     client_secret=SECRET)
    assert saved.status_code == 303
    registry = app.extensions["federator"].registry
    assert registry.credentials("leeds-cs")["client_secret"] == SECRET
    for path in ("/registry/endpoints/leeds-cs", "/registry/endpoints/leeds-cs/change",
                 "/registry/endpoints"):
        page = admin.get(path, headers=HTML).get_data(as_text=True)
        assert SECRET not in page
    assert "Stored (encrypted; not shown)" in admin.get(
        "/registry/endpoints/leeds-cs", headers=HTML).get_data(as_text=True)
    # a federator-lookup/1 endpoint takes no credentials
    other = signed_in(app, "authority-admin", "bradford-cs")
    refused = register(other, code="E08000032", client_id="x", client_secret="y",
                       token_url="http://127.0.0.1:9/token")
    assert refused.status_code == 422
    assert "takes no credentials" in refused.get_data(as_text=True)


def change(client: FlaskClient, endpoint_id: str, **fields: Any) -> Any:
    path = f"/registry/endpoints/{endpoint_id}/change"
    return client.post(path, headers=HTML,
                       data={"csrf_token": token(client, path), **registration(**fields)})


def approve(app: Flask, endpoint_id: str) -> None:
    pass_check(app, endpoint_id)
    broker = signed_in(app, "broker-admin")
    assert act(broker, endpoint_id, "approve").status_code == 303
    assert status_of(app, endpoint_id) == "active"


def test_a_new_url_needs_approval_again_but_a_new_contact_does_not(app: Flask) -> None:
    admin = signed_in(app, "authority-admin", "leeds-cs")
    register(admin)
    approve(app, "leeds-cs")
    form = admin.get("/registry/endpoints/leeds-cs/change", headers=HTML).get_data(as_text=True)
    assert 'value="http://127.0.0.1:9/"' in form and 'value="Leeds Children&#39;s Services"' in form
    assert change(admin, "leeds-cs", contact="new@leeds.example").status_code == 303
    assert status_of(app, "leeds-cs") == "active"
    moved = change(admin, "leeds-cs", url="http://127.0.0.1:10/")
    assert moved.status_code == 303
    assert status_of(app, "leeds-cs") == "pending"
    page = admin.get("/registry/endpoints/leeds-cs", headers=HTML).get_data(as_text=True)
    assert "need approval" in page
    unsafe = change(admin, "leeds-cs", url="ftp://files.example")
    assert unsafe.status_code == 422 and 'href="#url"' in unsafe.get_data(as_text=True)


def test_suspend_needs_a_reason_and_resume_brings_it_back(app: Flask) -> None:
    admin = signed_in(app, "authority-admin", "leeds-cs")
    register(admin)
    approve(app, "leeds-cs")
    page = admin.get("/registry/endpoints/leeds-cs", headers=HTML).get_data(as_text=True)
    assert "/registry/endpoints/leeds-cs/suspend" in page
    assert "/registry/endpoints/leeds-cs/approve" not in page
    no_reason = act(admin, "leeds-cs", "suspend")
    assert no_reason.status_code == 422
    assert 'href="#reason"' in no_reason.get_data(as_text=True)
    assert status_of(app, "leeds-cs") == "active"
    assert act(admin, "leeds-cs", "suspend", "Moving data centre tonight").status_code == 303
    assert status_of(app, "leeds-cs") == "suspended"
    page = admin.get("/registry/endpoints/leeds-cs", headers=HTML).get_data(as_text=True)
    assert "Moving data centre tonight" in page
    assert act(admin, "leeds-cs", "resume").status_code == 303
    assert status_of(app, "leeds-cs") == "active"
    # resuming an active endpoint is refused, on the page, without a change
    again = admin.get("/registry/endpoints/leeds-cs/resume", headers=HTML)
    assert again.status_code == 409 and "cannot resume" in again.get_data(as_text=True)


def test_a_broker_admin_sees_every_endpoint_and_rejects_with_a_reason(app: Flask) -> None:
    register(signed_in(app, "authority-admin", "leeds-cs"))
    register(signed_in(app, "authority-admin", "bradford-cs"), code="E08000032",
             name="Bradford Children's Services", coverage="E08000032")
    broker = signed_in(app, "broker-admin")
    listing = broker.get("/registry/endpoints", headers=HTML).get_data(as_text=True)
    assert "Leeds Children&#39;s Services" in listing and "Bradford Children&#39;s" in listing
    review = broker.get("/registry/endpoints/bradford-cs/reject", headers=HTML)
    assert "has not been tested" in review.get_data(as_text=True)
    no_reason = act(broker, "bradford-cs", "reject")
    assert no_reason.status_code == 422 and status_of(app, "bradford-cs") == "pending"
    assert act(broker, "bradford-cs", "reject", "Coverage is wrong").status_code == 303
    assert status_of(app, "bradford-cs") == "rejected"
    seen = signed_in(app, "authority-admin", "bradford-cs").get(
        "/registry/endpoints/bradford-cs", headers=HTML).get_data(as_text=True)
    assert ">Rejected<" in seen and "Coverage is wrong" in seen
    # a broker admin does not register or change an authority's details
    assert broker.get("/registry/endpoints/new", headers=HTML).status_code == 403
    assert broker.get("/registry/endpoints/leeds-cs/change", headers=HTML).status_code == 403


def test_one_authority_cannot_see_or_change_another_authoritys_endpoint(app: Flask) -> None:
    register(signed_in(app, "authority-admin", "bradford-cs"), code="E08000032",
             name="Bradford Children's Services", coverage="E08000032")
    approve(app, "bradford-cs")
    leeds = signed_in(app, "authority-admin", "leeds-cs")
    listing = leeds.get("/registry/endpoints", headers=HTML).get_data(as_text=True)
    assert "Bradford" not in listing
    csrf = token(leeds, "/registry/endpoints")
    for method, path, data in [
        ("get", "/registry/endpoints/bradford-cs", {}),
        ("get", "/registry/endpoints/bradford-cs/change", {}),
        ("post", "/registry/endpoints/bradford-cs/change", registration(url="http://x.test")),
        ("get", "/registry/endpoints/bradford-cs/suspend", {}),
        ("post", "/registry/endpoints/bradford-cs/suspend", {"reason": "mine now"}),
        ("post", "/registry/endpoints/bradford-cs/check", {}),
    ]:
        response = getattr(leeds, method)(path, headers=HTML, data={"csrf_token": csrf, **data})
        assert response.status_code == 404, (method, path)
        assert "Bradford" not in response.get_data(as_text=True)
    # nor approve its own: only the broker's admins do
    register(leeds)
    assert leeds.get("/registry/endpoints/leeds-cs/approve", headers=HTML).status_code == 403
    assert status_of(app, "bradford-cs") == "active" and status_of(app, "leeds-cs") == "pending"


def test_pages_need_the_roles_and_a_csrf_token(app: Flask) -> None:
    anonymous = app.test_client().get("/registry/endpoints", headers=HTML)
    assert anonymous.status_code == 302 and "/sign-in" in anonymous.headers["Location"]
    practitioner = signed_in(app, "practitioner")
    assert practitioner.get("/registry/endpoints", headers=HTML).status_code == 403
    admin = signed_in(app, "authority-admin", "leeds-cs")
    forged = admin.post("/registry/endpoints/new", data=registration(), headers=HTML)
    assert forged.status_code == 400
    assert app.extensions["federator"].registry.get("leeds-cs") is None
    nav = admin.get("/registry/endpoints", headers=HTML).get_data(as_text=True)
    assert 'href="/registry/endpoints"' in nav


def test_widening_on_the_change_form_waits_for_an_approval_of_what_the_page_showed(
        app: Flask) -> None:
    admin = signed_in(app, "authority-admin", "leeds-cs")
    register(admin)
    approve(app, "leeds-cs")
    # narrowing applies at once
    assert change(admin, "leeds-cs", coverage="E08000035").status_code == 303
    assert status_of(app, "leeds-cs") == "active"
    # national, under another authority's name: pending, saying what widened
    assert change(admin, "leeds-cs", coverage="national",
                  name="Bradford Children's Services").status_code == 303
    assert status_of(app, "leeds-cs") == "pending"
    page = admin.get("/registry/endpoints/leeds-cs", headers=HTML).get_data(as_text=True)
    assert "need approval" in page and "coverage widened to national" in page
    broker = signed_in(app, "broker-admin")
    review = broker.get("/registry/endpoints/leeds-cs/approve", headers=HTML)
    text = review.get_data(as_text=True)
    assert "National: every area" in text and 'id="what-changed"' in text
    assert "cannot be approved yet" not in text  # its address was tested: it can be
    seen = re.search(r'name="seen" type="hidden" value="([0-9a-f]+)"', text)
    assert seen
    # the admin widens again while the broker admin has the page open
    assert change(admin, "leeds-cs", coverage="national", name="Leeds and Bradford",
                  ).status_code == 303
    late = broker.post("/registry/endpoints/leeds-cs/approve", headers=HTML, data={
        "csrf_token": token(broker, "/registry/endpoints/leeds-cs"), "seen": seen.group(1)})
    late_page = late.get_data(as_text=True)
    assert late.status_code == 409 and "changed since you read" in late_page
    assert "govuk-error-summary" in late_page
    assert status_of(app, "leeds-cs") == "pending"
    again = broker.get("/registry/endpoints/leeds-cs/approve", headers=HTML).get_data(
        as_text=True)
    assert "Leeds and Bradford" in again
    fresh = re.search(r'name="seen" type="hidden" value="([0-9a-f]+)"', again)
    assert fresh and fresh.group(1) != seen.group(1)
    done = broker.post("/registry/endpoints/leeds-cs/approve", headers=HTML, data={
        "csrf_token": token(broker, "/registry/endpoints/leeds-cs"), "seen": fresh.group(1)})
    assert done.status_code == 303 and status_of(app, "leeds-cs") == "active"
    approved = app.extensions["federator"].trail.records(event="registry.approved")[-1]
    assert approved["approved"]["coverage"] == ["national"]
    assert approved["approved"]["name"] == "Leeds and Bradford"


def test_a_reason_or_contact_holding_an_nhs_number_is_refused_on_its_field(app: Flask) -> None:
    """Registry reasons are shown to the authority's admins and kept in the trail."""
    admin = signed_in(app, "authority-admin", "leeds-cs")
    refused = register(admin, contact="call about child 943 476 5919")
    assert refused.status_code == 422
    assert 'href="#contact"' in refused.get_data(as_text=True)
    assert "Contains an NHS number" in refused.get_data(as_text=True)
    register(admin)
    approve(app, "leeds-cs")
    smuggled = act(admin, "leeds-cs", "suspend", "complaint about ９４３４７６５９１９")
    assert smuggled.status_code == 422
    assert 'href="#reason"' in smuggled.get_data(as_text=True)
    assert status_of(app, "leeds-cs") == "active"
