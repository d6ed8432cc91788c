"""Finding the child the way FHIR servers do, over real HTTP on loopback
(``support/fhir_policy_server.py``): ``Patient/$match`` when the
CapabilityStatement offers it, its match grades and scores judged by the kit's
rules; otherwise searches scored by the kit's own matching."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from support.fhir_policy_server import DANA_NHS, PolicyFhirServer, serve_policy
from support.fhir_server import NHS, deadline

from adapters.base import Target
from adapters.fhir_r4 import FhirR4Client

pytestmark = pytest.mark.integration

fhir_server = pytest.fixture(serve_policy, name="fhir_server")
S17 = {"type": "statutory", "power": "children-act-1989-s17", "reference": "S17-1"}
S47 = {"type": "statutory", "power": "children-act-1989-s47", "reference": "S47-1"}
AMARA = {"given_name": "Amara", "family_name": "Okafor", "date_of_birth": "2015-03-12",
         "postcodes": ["LS6 2AB"]}
#: valid, and no child's at the server
UNUSED_NHS = "9434765889"


@pytest.fixture(name="client")
def fhir_client() -> Iterator[FhirR4Client]:
    client = FhirR4Client(user_agent="federator-test")
    yield client
    client.close()


def target(server: PolicyFhirServer) -> Target:
    return dataclasses.replace(server.target(), name="Kirklees Health")


def ask(client: FhirR4Client, server: PolicyFhirServer, basis: dict[str, Any] | None = None,
        **child: Any) -> dict[str, Any]:
    payload = {"lookup_id": "L-" + uuid.uuid4().hex, "include_past": True,
               "basis": basis or S47, "child": {"postcodes": [], **child}}
    return client.lookup(target(server), payload, deadline=deadline())


def names(answer: dict[str, Any]) -> set[str]:
    return {p["name"] for p in answer["professionals"]}


# -- without $match: searched, and scored by the kit -------------------------------------


def test_a_hyphenated_family_name_the_server_returns_is_found(
        fhir_server: PolicyFhirServer, client: FhirR4Client) -> None:
    # the record is "Okafor-Smith"; the practitioner knows one half of it
    for family in ("Okafor", "Smith", "Okafor Smith"):
        answer = ask(client, fhir_server, given_name="Lily", family_name=family,
                     date_of_birth="2014-02-02", postcodes=["LS6 4AB"])
        assert answer["status"] == "match", (family, answer)
        assert names(answer) == {"Ola Open"}
    assert fhir_server.metadata_reads >= 1  # asked whether it offers $match
    assert not fhir_server.match_asked


def test_a_name_and_date_of_birth_that_do_not_fit_are_not_a_match(
        fhir_server: PolicyFhirServer, client: FhirR4Client) -> None:
    answer = ask(client, fhir_server, given_name="Lily", family_name="Jones",
                 date_of_birth="2014-02-02", postcodes=["YO1 1AA"])
    assert answer["status"] == "no_match" and answer["professionals"] == []


# -- with $match --------------------------------------------------------------------------


def test_match_is_used_when_the_capability_statement_offers_it(
        fhir_server: PolicyFhirServer, client: FhirR4Client) -> None:
    fhir_server.offer_match = True
    fhir_server.grades = [("pat-1", "certain", 0.97)]
    answer = ask(client, fhir_server, **AMARA)
    assert answer["status"] == "match" and answer["confidence"] == 0.97
    assert "Rita Shah" in names(answer)
    sent = fhir_server.match_asked[0]
    patient = next(p["resource"] for p in sent["parameter"] if p["name"] == "resource")
    assert patient["name"] == [{"family": "Okafor", "given": ["Amara"]}]
    assert patient["birthDate"] == "2015-03-12"
    assert patient["address"] == [{"postalCode": "LS6 2AB"}]
    assert "Patient" not in fhir_server.searches  # no demographic search besides


def test_a_probable_grade_is_a_match_only_when_the_kit_agrees(
        fhir_server: PolicyFhirServer, client: FhirR4Client) -> None:
    fhir_server.offer_match = True
    fhir_server.grades = [("pat-1", "probable", 0.9)]
    assert ask(client, fhir_server, **AMARA)["status"] == "match"
    # only the date of birth and postcode agree: the kit would not call it a match
    answer = ask(client, fhir_server, **{**AMARA, "given_name": "Ada", "family_name": "Oak"})
    assert answer["status"] == "no_match" and answer["professionals"] == []
    assert answer["notice"] and "Kirklees Health" in answer["notice"]


def test_a_possible_grade_comes_back_as_possible_never_a_match(
        fhir_server: PolicyFhirServer, client: FhirR4Client) -> None:
    fhir_server.offer_match = True
    fhir_server.grades = [("pat-1", "possible", 0.6)]
    answer = ask(client, fhir_server, **AMARA)  # every detail agrees, still only possible
    assert answer["status"] == "no_match" and answer["professionals"] == []
    assert answer["confidence"] == 0.6
    assert answer["notice"].startswith("A possible match was found")
    assert answer["matched_on"] == ["given_name", "family_name", "date_of_birth", "postcode"]


def test_a_certainly_not_grade_is_dropped(fhir_server: PolicyFhirServer,
                                          client: FhirR4Client) -> None:
    fhir_server.offer_match = True
    fhir_server.grades = [("pat-1", "certainly-not", 0.0)]
    answer = ask(client, fhir_server, **AMARA)
    assert answer["status"] == "no_match" and answer["confidence"] == 0.0
    assert not answer.get("notice") and answer["professionals"] == []


def test_two_certain_candidates_are_not_a_match(fhir_server: PolicyFhirServer,
                                                client: FhirR4Client) -> None:
    # two records of the same details (another NHS number): which is the child?
    twin = {**fhir_server.store["Patient/pat-1"], "id": "pat-dup", "identifier": [
        {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765897"}]}
    fhir_server.store["Patient/pat-dup"] = twin
    fhir_server.offer_match = True
    fhir_server.grades = [("pat-1", "certain", 1.0), ("pat-dup", "certain", 1.0)]
    answer = ask(client, fhir_server, **AMARA)
    assert answer["status"] == "no_match" and answer["professionals"] == []
    assert answer["notice"]
    # a "certain" for a child whose details do not fit is at most possible
    fhir_server.grades = [("pat-1", "certain", 1.0), ("pat-lily", "certain", 1.0)]
    assert ask(client, fhir_server, **AMARA)["status"] == "match"


def test_a_certain_grade_for_another_childs_nhs_number_is_never_believed(
        fhir_server: PolicyFhirServer, client: FhirR4Client) -> None:
    # A hostile (or broken) server: "certain" for Amara, whose NHS number is not the
    # one asked about. Two different valid NHS numbers are two children (the kit's rule).
    fhir_server.offer_match = True
    fhir_server.grades = [("pat-1", "certain", 1.0)]
    answer = ask(client, fhir_server, nhs_number=UNUSED_NHS, **AMARA)
    assert answer["status"] == "no_match" and answer["confidence"] == 0.0
    assert answer["professionals"] == [] and not answer.get("notice")
    # the same answer for her own NHS number is found by the identifier search
    assert ask(client, fhir_server, nhs_number=NHS)["status"] == "match"


def test_a_possible_match_with_a_sensitive_only_child_looks_not_known(
        fhir_server: PolicyFhirServer, client: FhirR4Client) -> None:
    fhir_server.offer_match = True
    fhir_server.grades = [("pat-dana", "possible", 0.7)]
    dana = {"given_name": "Dana", "family_name": "Quill", "date_of_birth": "2009-05-04"}
    hidden = ask(client, fhir_server, S17, **dana)
    assert hidden["status"] == "no_match" and hidden["confidence"] == 0.0
    assert not hidden.get("notice") and not hidden.get("matched_on")
    covered = ask(client, fhir_server, S47, **dana)
    assert covered["notice"] and covered["confidence"] == 0.7
    fhir_server.grades = [("pat-dana", "certain", 1.0)]
    assert ask(client, fhir_server, S17, **dana)["status"] == "no_match"
    assert names(ask(client, fhir_server, S47, nhs_number=DANA_NHS)) == {"Nia Holt"}


def test_a_server_without_match_after_all_is_searched(
        fhir_server: PolicyFhirServer, client: FhirR4Client) -> None:
    fhir_server.offer_match = True
    fhir_server.grades = [("pat-1", "certain", 1.0)]
    assert ask(client, fhir_server, **AMARA)["status"] == "match"
    # the client still holds "offered"; the operation now answers 404
    fhir_server.offer_match = False
    answer = ask(client, fhir_server, **AMARA)
    assert answer["status"] == "match" and "Rita Shah" in names(answer)
    assert "Patient" in fhir_server.searches


def test_an_identifier_search_answering_another_child_is_not_believed(
        fhir_server: PolicyFhirServer, client: FhirR4Client) -> None:
    # asked for Dana's NHS number, the server answers with Amara
    fhir_server.identifier_answer = "pat-1"
    answer = ask(client, fhir_server, nhs_number=DANA_NHS)
    assert answer["status"] == "no_match" and answer["professionals"] == []
    assert "CareTeam" not in fhir_server.searches
