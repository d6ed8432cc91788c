"""Interoperability: the FHIR R4 client against an independent FHIR server, not the
project's own: Medplum's FHIR router and in-memory repository (npm
``@medplum/fhir-router``, search evaluated from the FHIR specification's
SearchParameter definitions), behind a thin HTTP wrapper
(``medplum_fhir/server.mjs``) on loopback, loaded over HTTP with the same UK
Core-shaped resources as ``support/fhir_server.py``. It supports no
``_include``, so every reference is resolved by read; it pages by ``_offset``.

Skipped without Node.js or ``npm ci`` in ``medplum_fhir`` (scripts/test runs it);
a failure instead under ``FEDERATOR_REQUIRE_SERVICES=1`` (CI)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from support import medplum as harness
from support.fhir_server import NHS, PAST, by_name, concept, deadline, payload, resources
from support.medplum import Medplum, stop

from adapters.fhir_r4 import NHS_NUMBER_SYSTEM, FhirR4Client

pytestmark = pytest.mark.integration

REQUIRED = os.environ.get("FEDERATOR_REQUIRE_SERVICES") == "1"
FOUR = {"Rita Shah", "Tom Bell", "Una Cole", "Vic Dunn"}
#: a second child, whose records use the forms real servers write
WIRE_NHS = "9990001057"


def start(config: dict[str, Any] | None = None) -> Medplum:
    try:
        return harness.start(config)
    except harness.NotAvailable as e:
        if REQUIRED:
            pytest.fail(f"the Medplum interop test needs Node.js: {e}")
        pytest.skip(str(e))


def practitioner(pid: str, given: str, family: str) -> dict[str, Any]:
    return {"resourceType": "Practitioner", "id": pid,
            "name": [{"family": family, "given": [given]}],
            "telecom": [{"system": "email", "value": f"{given.lower()}@example.nhs.uk"}]}


def load(server: Medplum) -> None:
    """The project's test data, then a child whose records use contained participants,
    versioned references (Medplum's own version ids), a reference to another server,
    and a CareTeam reached only through EpisodeOfCare.team (no subject)."""
    for resource in resources():
        server.put(resource)
    kept = server.put(practitioner("wire-p1", "Vera", "Lund"))
    server.put({"resourceType": "Patient", "id": "pat-w",
                "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": WIRE_NHS}],
                "name": [{"family": "Wire", "given": ["Child"]}], "birthDate": "2017-05-05"})
    server.put(practitioner("wire-p2", "Eli", "Ford"))
    server.put({"resourceType": "CareTeam", "id": "wire-team", "status": "active",
                "name": "Family Support", "subject": {"reference": "Patient/pat-w"},
                "contained": [practitioner("c1", "Cara", "Moss")],
                "participant": [
                    {"role": [concept("Key worker")], "member": {"reference": "#c1"}},
                    {"member": {"reference":
                                f"Practitioner/wire-p1/_history/{kept['meta']['versionId']}"}},
                    {"member": {"reference":
                                "https://other-trust.invalid/R4/Practitioner/x1"}}]})
    server.put({"resourceType": "CareTeam", "id": "wire-unlinked", "status": "active",
                "name": "Youth Offending Team",
                "participant": [{"member": {"reference": "Practitioner/wire-p2"}}]})
    server.put({"resourceType": "EpisodeOfCare", "id": "wire-eoc", "status": "active",
                "patient": {"reference": "Patient/pat-w"},
                "team": [{"reference": "CareTeam/wire-unlinked"}]})


@pytest.fixture(scope="module", name="medplum")
def medplum_server() -> Iterator[Medplum]:
    server = start()
    try:
        load(server)
        yield server
    finally:
        stop(server)


@pytest.fixture(name="client")
def fhir_client() -> Iterator[FhirR4Client]:
    client = FhirR4Client(user_agent="federator-test", page_size=1)
    yield client
    client.close()


def test_finds_professionals_by_nhs_number_without_include(medplum: Medplum,
                                                           client: FhirR4Client) -> None:
    before = medplum.requests()
    answer = client.lookup(medplum.target(), payload(), deadline=deadline(10))
    assert answer["status"] == "match" and answer["confidence"] == 1.0
    assert "partial" not in answer
    people = by_name(answer)
    assert set(people) == FOUR
    assert people["Rita Shah"]["organisation"] == "Kirklees Community Health"
    assert people["Rita Shah"]["phone"] == "01484 111111"
    assert people["Tom Bell"]["current"] is False and people["Tom Bell"]["to"] == PAST
    # the Patient, two CareTeam pages at _count=1 (Medplum's next link followed), the
    # EpisodeOfCare; no _include, so the role, the organisation and each of the four
    # Practitioners read by id
    assert medplum.requests() - before == 1 + 2 + 1 + 6


def test_demographic_search_and_an_unknown_child(medplum: Medplum,
                                                 client: FhirR4Client) -> None:
    answer = client.lookup(medplum.target(), payload(
        given_name="Amara", family_name="Okafor", date_of_birth="2015-03-12", postcodes=[]),
        deadline=deadline(10))
    assert answer["status"] == "match" and set(by_name(answer)) == FOUR
    nobody = client.lookup(medplum.target(), payload(nhs_number="9990001022"),
                           deadline=deadline(10))
    assert nobody["status"] == "no_match" and nobody["professionals"] == []


def test_records_written_the_ways_servers_write_them(medplum: Medplum,
                                                     client: FhirR4Client) -> None:
    answer = client.lookup(medplum.target(), payload(nhs_number=WIRE_NHS),
                           deadline=deadline(10))
    people = by_name(answer)
    assert people["Cara Moss"]["role"] == "Key worker"  # contained
    assert people["Cara Moss"]["team"] == "Family Support"
    assert "Vera Lund" in people  # versioned, Medplum's own version id
    assert people["Eli Ford"]["team"] == "Youth Offending Team"  # via EpisodeOfCare.team
    assert answer["partial"] == {"foreign_reference": (
        "1 reference to another server not followed: Practitioner at other-trust.invalid")}


def test_the_page_cap_answers_with_what_was_read(medplum: Medplum) -> None:
    capped = FhirR4Client(user_agent="federator-test", page_size=1, max_pages=1)
    try:
        answer = capped.lookup(medplum.target(), payload(), deadline=deadline(10))
    finally:
        capped.close()
    assert answer["status"] == "match"
    assert {"Rita Shah", "Vic Dunn"} <= set(by_name(answer)) < FOUR
    assert set(answer["partial"]) == {"page_cap"}


def test_links_on_the_base_the_server_is_configured_with() -> None:
    """Medplum told its base is ``localhost`` (another host name for the same server,
    as behind a proxy) writes every link there; the client asks on the registered
    127.0.0.1 base, which the Bundles' self links declare."""
    server = start({"baseUrl": "http://localhost:{port}/fhir/R4"})
    client = FhirR4Client(user_agent="federator-test", page_size=1)
    try:
        for resource in resources():
            server.put(resource)
        answer = client.lookup(server.target(), payload(), deadline=deadline(10))
        assert answer["status"] == "match" and "partial" not in answer
        assert set(by_name(answer)) == FOUR
        assert NHS not in json.dumps(answer)
    finally:
        client.close()
        stop(server)
