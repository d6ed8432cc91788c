"""The FHIR R4 client against the standard as servers actually speak it (issue 20),
on the loopback FHIR server (``support/fhir_server.py``): links built from the
server's own base, contained, versioned and foreign references, CareTeams
reached only through ``EpisodeOfCare.team``, ``_count`` and the work cap, and
OperationOutcome diagnostics."""

from __future__ import annotations

from typing import Any

import pytest
from support.fhir_server import (
    NHS,
    FhirServer,
    by_name,
    concept,
    deadline,
    fhir_client,
    payload,
    ref,
    serve,
)

from adapters.base import AdapterFailure
from adapters.fhir_paging import CUT_CANDIDATES, PARTIAL_NOTICE
from adapters.fhir_r4 import PAGE_SIZE, FhirR4Client

pytestmark = pytest.mark.integration

fhir_server = pytest.fixture(serve, name="fhir_server")
client = pytest.fixture(fhir_client, name="client")

#: where the server thinks it lives (behind a proxy): never resolvable, never asked
INTERNAL = "http://fhir-internal.invalid:8080/fhir"
FOUR = {"Rita Shah", "Tom Bell", "Una Cole", "Vic Dunn"}


def practitioner(pid: str, given: str, family: str) -> dict[str, Any]:
    return {"resourceType": "Practitioner", "id": pid,
            "name": [{"family": family, "given": [given]}],
            "telecom": [{"system": "email", "value": f"{given.lower()}@example.nhs.uk"}]}


def team(tid: str, *members: str, subject: bool = True, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "CareTeam", "id": tid, "status": "active", "name": f"Team {tid}",
        "category": [concept("Early help")],
        "participant": [{"role": [concept("Key worker")], "member": {"reference": m}}
                        for m in members], **extra}
    if subject:
        body["subject"] = ref("Patient", "pat-1")
    return body


# -- next links -------------------------------------------------------------------------


@pytest.mark.parametrize("declares", ["self", "metadata"])
def test_next_links_on_the_base_the_server_declares(fhir_server: FhirServer,
                                                    client: FhirR4Client,
                                                    declares: str) -> None:
    """Behind a proxy the server writes its own base in every link; the client asks
    the same path on the registered base, and never connects to the declared one."""
    fhir_server.public_base, fhir_server.declares = INTERNAL, declares
    answer = client.lookup(fhir_server.target(), payload(), deadline=deadline())
    assert answer["status"] == "match" and "partial" not in answer
    assert set(by_name(answer)) == FOUR
    assert fhir_server.searches.count("CareTeam") == 2  # the second page was followed


def test_a_next_link_to_another_server_is_a_named_partial_answer(
        fhir_server: FhirServer, client: FhirR4Client) -> None:
    fhir_server.next_base = "http://other-server.invalid/R4"
    answer = client.lookup(fhir_server.target(), payload(), deadline=deadline())
    # the first page's team and the episode are kept; the second page was never asked
    assert answer["status"] == "match"
    assert set(by_name(answer)) == {"Rita Shah", "Tom Bell", "Vic Dunn"}
    assert answer["partial"] == {"foreign_next_link": (
        "the next page of CareTeam results is on another server (other-server.invalid): "
        "not followed")}
    assert answer["notice"] == PARTIAL_NOTICE
    assert fhir_server.searches.count("CareTeam") == 1


# -- references -------------------------------------------------------------------------


def test_contained_participants_are_read(fhir_server: FhirServer,
                                         client: FhirR4Client) -> None:
    fhir_server.add(team("team-c", "#p1", "#r1", contained=[
        practitioner("p1", "Cara", "Moss"),
        {"resourceType": "PractitionerRole", "id": "r1", "practitioner": {"reference": "#p2"},
         "code": [concept("Family support worker")],
         "telecom": [{"system": "phone", "value": "01484 222222"}]},
        practitioner("p2", "Dev", "Rao")]))
    answer = client.lookup(fhir_server.target(), payload(), deadline=deadline())
    people = by_name(answer)
    assert people["Cara Moss"]["team"] == "Team team-c"
    assert people["Dev Rao"]["phone"] == "01484 222222"
    assert people["Dev Rao"]["role"] == "Key worker"


def test_versioned_references_are_read_as_the_resource(fhir_server: FhirServer,
                                                       client: FhirR4Client) -> None:
    fhir_server.add(practitioner("prac-9", "Wyn", "Hale"),
                    team("team-v", "Practitioner/prac-9/_history/2",
                         f"{fhir_server.base}/Practitioner/prac-1/_history/7"))
    fhir_server.include = False
    answer = client.lookup(fhir_server.target(), payload(), deadline=deadline())
    assert {"Wyn Hale", "Rita Shah"} <= set(by_name(answer))
    assert "Practitioner/prac-9" in fhir_server.reads
    assert not any("_history" in r for r in fhir_server.reads)


def test_a_reference_to_another_server_is_never_fetched_and_is_named(
        fhir_server: FhirServer, client: FhirR4Client) -> None:
    fhir_server.add(team("team-f", "https://other-trust.invalid/R4/Practitioner/x1",
                         "https://other-trust.invalid/R4/Practitioner/x2/_history/1"))
    answer = client.lookup(fhir_server.target(), payload(), deadline=deadline())
    assert set(by_name(answer)) == FOUR
    assert answer["partial"] == {"foreign_reference": (
        "2 references to another server not followed: Practitioner at other-trust.invalid")}
    # and not read from this server under the other's path either
    assert not any(r.endswith(("/x1", "/x2")) for r in fhir_server.reads)


def test_careteams_reached_through_episode_of_care_team(fhir_server: FhirServer,
                                                        client: FhirR4Client) -> None:
    fhir_server.add(practitioner("prac-e", "Eli", "Ford"),
                    practitioner("prac-o", "Oth", "Er"),
                    team("team-e", "Practitioner/prac-e", subject=False),
                    # a team that says it is about another patient is not this child's
                    team("team-o", "Practitioner/prac-o", subject=False,
                         ),
                    {**fhir_server.store["EpisodeOfCare/eoc-1"],
                     "team": [ref("CareTeam", "team-e"), ref("CareTeam", "team-o")]})
    fhir_server.store["CareTeam/team-o"]["subject"] = ref("Patient", "pat-2")
    answer = client.lookup(fhir_server.target(), payload(), deadline=deadline())
    people = by_name(answer)
    assert people["Eli Ford"]["team"] == "Team team-e"
    assert "Oth Er" not in people
    assert "CareTeam/team-e" in fhir_server.reads


# -- the work, capped -------------------------------------------------------------------


def test_count_is_sent_and_the_cap_gives_what_was_read(fhir_server: FhirServer) -> None:
    fhir_server.add(*(team(f"team-{i}", "Practitioner/prac-1") for i in range(3, 9)))
    capped = FhirR4Client(user_agent="federator-test", max_pages=3)
    try:
        answer = capped.lookup(fhir_server.target(), payload(), deadline=deadline())
    finally:
        capped.close()
    assert set(fhir_server.counts) == {str(PAGE_SIZE)}
    assert answer["status"] == "match" and "Rita Shah" in by_name(answer)
    assert answer["partial"] == {"page_cap": (
        "CareTeam results ran past 3 pages of results: the rest were not read")}
    assert answer["notice"] == PARTIAL_NOTICE
    assert fhir_server.searches.count("CareTeam") == 3


def test_a_match_on_patient_pages_that_were_cut_is_not_a_match(
        fhir_server: FhirServer) -> None:
    """The pages not read may hold another record with the same NHS number."""
    fhir_server.add({**fhir_server.store["Patient/pat-1"], "id": "pat-dup"})
    capped = FhirR4Client(user_agent="federator-test", max_pages=1)
    try:
        answer = capped.lookup(fhir_server.target(), payload(), deadline=deadline())
    finally:
        capped.close()
    assert answer["status"] == "no_match" and answer["professionals"] == []
    assert answer["notice"] == CUT_CANDIDATES
    assert set(answer["partial"]) == {"page_cap"}
    assert fhir_server.searches == ["Patient"]


def test_references_past_the_read_cap_give_what_was_read(fhir_server: FhirServer) -> None:
    fhir_server.include = False
    capped = FhirR4Client(user_agent="federator-test", max_reads=3)
    try:
        answer = capped.lookup(fhir_server.target(), payload(), deadline=deadline())
    finally:
        capped.close()
    # people are read first: the role, Tom Bell, Una Cole; Vic Dunn and Rita Shah (the
    # role's practitioner) and the organisation are left unread
    assert answer["status"] == "match" and set(by_name(answer)) == {"Tom Bell", "Una Cole"}
    assert answer["partial"] == {"read_cap": (
        "more than 3 referenced resources: the rest were not read")}
    assert len(fhir_server.reads) == 3


# -- OperationOutcome -------------------------------------------------------------------


@pytest.mark.parametrize(("fail", "child", "said"), [
    # a name that is no shape of a person's detail (lower case, as typed): cut out
    # because the broker sent it
    ("refused", {"given_name": "Amara", "family_name": "okafor", "date_of_birth": "2015-03-12"},
     "HTTP 400: OperationOutcome error/not-supported: Unknown search parameter '_foo' for "
     "Patient?identifier=[…] ([…])"),
    ("outcome", {}, "HTTP 500: OperationOutcome error/processing: search failed for […]")])
def test_operation_outcome_diagnostics_are_kept_without_patient_data(
        fhir_server: FhirServer, client: FhirR4Client, fail: str, child: dict[str, str],
        said: str) -> None:
    fhir_server.fail = fail
    with pytest.raises(AdapterFailure) as e:
        client.lookup(fhir_server.target(), payload(**child), deadline=deadline())
    assert e.value.detail == said
    assert NHS not in e.value.detail and "okafor" not in e.value.detail.lower()
