"""Bad input: 422 naming the field, nothing sent, the refusal audited."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
import requests
from support.budget import UNLIMITED

from federator.config import Settings
from federator.demo.federation import Federation, start_federation

pytestmark = pytest.mark.integration

TODAY = date.today()


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    directory = tmp_path_factory.mktemp("bad-input")
    federation = start_federation(directory, base=Settings(
        database_url=f"sqlite:///{directory / 'db.sqlite'}", **UNLIMITED))
    yield federation
    federation.stop()


@pytest.fixture(scope="module")
def token(fed: Federation) -> str:
    return fed.token("practitioner")


def good() -> dict[str, Any]:
    return {
        "child": {"nhs_number": "9434765919", "postcodes": ["LS6 2AB"]},
        "purpose": "Assessment under section 17: finding services already involved",
        "basis": {"type": "consent", "given_by": "parent",
                  "given_on": (TODAY - timedelta(days=1)).isoformat(), "reference": "C-1"},
    }


def with_(path: str, value: Any) -> dict[str, Any]:
    body = good()
    *parents, leaf = path.split(".")
    node = body
    for key in parents:
        node = node[key]
    node[leaf] = value
    return body


CASES = {
    "invalid NHS number": (with_("child.nhs_number", "9434765918"), ["child", "nhs_number"]),
    "NHS number of the wrong type": (with_("child.nhs_number", 9434765919),
                                     ["child", "nhs_number"]),
    "unknown basis type": (with_("basis.type", "curiosity"), ["basis", "type"]),
    "consent in the future": (with_("basis.given_on", (TODAY + timedelta(days=1)).isoformat()),
                              ["basis", "given_on"]),
    "consent too old": (with_("basis.given_on", (TODAY - timedelta(days=400)).isoformat()),
                        ["basis", "given_on"]),
    "birth in the future": (with_("child", {"given_name": "Amara", "family_name": "Okafor",
                                            "date_of_birth": (TODAY + timedelta(days=3))
                                            .isoformat()}),
                            ["child", "date_of_birth"]),
    "name without date of birth": (with_("child", {"given_name": "Amara",
                                                   "family_name": "Okafor"}),
                                   ["child", "date_of_birth"]),
    "bad postcode": (with_("child.postcodes", ["not a postcode"]), ["child", "postcodes"]),
    "unknown field": (with_("colour", "blue"), ["colour"]),
    "short safeguarding justification": (
        with_("basis", {"type": "safeguarding", "justification": "risk"}),
        ["basis", "justification"]),
    "unknown statutory power": (
        with_("basis", {"type": "statutory", "power": "whim", "reference": "X"}),
        ["basis", "power"]),
    "deadline above the maximum": (with_("deadline_ms", 10_000_000), ["deadline_ms"]),
    "include_past not a boolean": (with_("include_past", "perhaps"), ["include_past"]),
    "body is a list": ([good()], ["_schema"]),
    "purpose missing": ({k: v for k, v in good().items() if k != "purpose"}, ["purpose"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_names_the_field_and_nothing_is_sent(fed: Federation, token: str,
                                                       case: str) -> None:
    body, path = CASES[case]
    trail = fed.app.extensions["federator"].trail
    requested_before = len(trail.records(event="lookup.requested"))
    refused_before = len(trail.records(event="lookup.refused", limit=10_000))
    response = requests.post(f"{fed.broker.url}/api/v1/lookups", json=body, timeout=20,
                             headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 422, response.text
    node = response.json()["errors"]["json"]
    for key in path:
        assert key in node, (case, response.json())
        node = node[key]
    assert len(trail.records(event="lookup.requested")) == requested_before
    refused = trail.records(event="lookup.refused", limit=10_000)
    assert len(refused) == refused_before + 1
    assert refused[-1]["fields"], refused[-1]
    assert "9434765919" not in str(refused[-1])


@pytest.mark.parametrize(("data", "content_type"), [
    ("{not json", "application/json"),
    ("child=1", "application/x-www-form-urlencoded"),
    ("", "application/json"),
])
def test_unreadable_bodies_are_refused_not_crashed(fed: Federation, token: str, data: str,
                                                   content_type: str) -> None:
    response = requests.post(f"{fed.broker.url}/api/v1/lookups", data=data, timeout=20,
                             headers={"Authorization": f"Bearer {token}",
                                      "Content-Type": content_type})
    assert response.status_code == 422, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["errors"]
