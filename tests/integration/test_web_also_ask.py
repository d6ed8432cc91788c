"""The lookup form's "another authority" must be one of the registry's active
authorities: anything else is named on the field and nothing is sent."""

from __future__ import annotations

import pytest
from flask import Flask
from support.web_client import HTML, app_on_fresh_database, signed_in, token

pytestmark = pytest.mark.integration

app = pytest.fixture(app_on_fresh_database, name="app")


def test_an_unknown_authority_is_refused_on_its_field(app: Flask) -> None:
    client = signed_in(app, "practitioner")
    response = client.post("/lookups/new", headers=HTML, data={
        "csrf_token": token(client, "/lookups/new"), "nhs_number": "943 476 5919",
        "purpose": "Assessment under section 17", "basis_type": "safeguarding",
        "justification": "Asking the parents would put the child at risk of harm now.",
        "also_ask": "no-such-authority"})
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert 'href="#also_ask"' in body and "Choose an authority from the list" in body
    trail = app.extensions["federator"].trail
    assert not trail.records(event="lookup.requested")
    [refused] = trail.records(event="lookup.refused")
    assert "also_ask" in str(refused)
