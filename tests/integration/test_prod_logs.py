"""Logs in production: the request id reaches every adapter kit, and no NHS
number, name or date of birth from a lookup reaches any log line (broker and
kits, every level down to DEBUG, JSON as the broker writes them)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from support.budget import UNLIMITED
from support.log_capture import identity_strings, json_logs, leaks
from support.named_children import add_named_children, lookup_body, nhs_number

from federator.config import Settings
from federator.demo.federation import Federation, start_federation

pytestmark = pytest.mark.integration


@pytest.fixture
def federation(tmp_path: Path) -> Iterator[Federation]:
    fed = start_federation(tmp_path / "fed", base=Settings(
        **UNLIMITED, deadline_default_ms=3000))
    yield fed
    fed.stop()


def _post(fed: Federation, body: dict, token: str, **headers: str) -> requests.Response:
    return requests.post(f"{fed.broker.url}/api/v1/lookups", json=body, timeout=30,
                         headers={"Authorization": f"Bearer {token}", **headers})


def test_request_id_reaches_every_kit_that_was_asked(federation: Federation) -> None:
    named = add_named_children(federation)[0]
    token = federation.token()
    with json_logs() as buffer:
        response = _post(federation, lookup_body(named.child()), token,
                         **{"X-Request-Id": "req-prod-0123456789"})
    assert response.status_code == 200, response.text
    assert response.headers["X-Request-Id"] == "req-prod-0123456789"
    answered = {a["id"] for a in response.json()["authorities"]
                if a["outcome"] in ("match", "no_match", "declined")}
    assert named.authority in answered
    kit_lines = [json.loads(line) for line in buffer.getvalue().splitlines()
                 if '"adapters.kit"' in line]
    with_id = [e for e in kit_lines if "request_id=req-prod-0123456789" in e["message"]]
    # one kit line per authority that answered, each carrying the broker's id
    assert len(with_id) == len(answered), kit_lines
    # an absurd id is replaced by the broker's own, never forwarded or echoed
    with json_logs() as buffer:
        response = _post(federation, lookup_body(named.child()), token,
                         **{"X-Request-Id": "x" * 500})
    own = response.headers["X-Request-Id"]
    assert own != "x" * 500 and len(own) == 32
    assert f"request_id={own}" in buffer.getvalue()
    assert "x" * 65 not in buffer.getvalue()


def test_no_identity_from_a_lookup_reaches_any_log_line(federation: Federation) -> None:
    named = add_named_children(federation)
    live = {a.id for a in federation.world.authorities if a.behaviour != "down"}
    known = [c for c in federation.world.children
             if set(c.known_to) & live and min(len(c.given_name), len(c.family_name)) >= 4][:6]
    children = [n.child() for n in named] + [n.child(with_nhs=False) for n in named[:2]]
    children += [c.identity() for c in known]
    # a child no authority knows, and one refused for a bad NHS number
    children.append({"nhs_number": nhs_number("999000991"), "given_name": "Ottilie",
                     "family_name": "Brönte-Quayle", "date_of_birth": "2016-07-23",
                     "postcodes": ["LS6 2AB"]})
    valid = nhs_number("999000881")
    refused = {"nhs_number": valid[:9] + str((int(valid[9]) + 1) % 10),  # check digit wrong
               "given_name": "Xanthe", "family_name": "Vårdal", "date_of_birth": "2017-02-28"}
    token = federation.token()
    outcomes: set[str] = set()
    with json_logs() as buffer:
        for child in children:
            response = _post(federation, lookup_body(child), token)
            assert response.status_code == 200, response.text
            outcomes |= {a["outcome"] for a in response.json()["authorities"]}
        assert _post(federation, lookup_body(refused), token).status_code == 422
    lines = buffer.getvalue().splitlines()
    assert "match" in outcomes and "no_match" in outcomes  # the kits really looked
    assert any('"adapters.kit"' in line for line in lines)  # and their lines were captured
    assert any("lookup completed" in line for line in lines)  # so were the broker's
    secrets = identity_strings([*children, refused])
    assert leaks(lines, secrets) == []
