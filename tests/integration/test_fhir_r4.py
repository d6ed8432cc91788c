"""The FHIR R4 client against a real FHIR server on loopback (``support/fhir_server.py``):
UK Core-shaped resources, an OAuth2 token endpoint, 401s, OperationOutcomes,
paging, and ``_include`` that can be switched off."""

from __future__ import annotations

import pytest
import redis
from support.fhir_server import (
    NHS,
    PAST,
    FhirServer,
    by_name,
    deadline,
    fhir_client,
    payload,
    serve,
)

from adapters.base import AdapterFailure, Target
from adapters.fhir_r4 import FhirR4Client, RedisTokenCache

pytestmark = pytest.mark.integration


fhir_server = pytest.fixture(serve, name="fhir_server")
client = pytest.fixture(fhir_client, name="client")


def test_finds_professionals_by_nhs_number_over_pages(fhir_server: FhirServer,
                                                     client: FhirR4Client) -> None:
    asked = payload()
    answer = client.lookup(fhir_server.target(), asked, deadline=deadline())
    assert answer["lookup_id"] == asked["lookup_id"]
    assert answer["status"] == "match" and answer["confidence"] == 1.0
    people = by_name(answer)
    assert set(people) == {"Rita Shah", "Tom Bell", "Una Cole", "Vic Dunn"}
    nurse = people["Rita Shah"]
    assert nurse == {
        "name": "Rita Shah", "role": "School nurse", "service": "School nursing",
        "organisation": "Kirklees Community Health", "team": "Huddersfield School Nursing",
        "phone": "01484 111111", "email": "rita@example.nhs.uk", "registration_number": "NMC1",
        "current": True, "from": "2024-09-01", "to": None}
    assert people["Tom Bell"]["current"] is False and people["Tom Bell"]["to"] == PAST
    assert people["Vic Dunn"]["role"] == "Care manager"
    assert people["Vic Dunn"]["service"] == "Children's community mental health"
    # two CareTeams one per page: the second page was followed
    assert fhir_server.searches.count("CareTeam") == 2


def test_past_involvement_only_when_asked(fhir_server: FhirServer,
                                          client: FhirR4Client) -> None:
    answer = client.lookup(fhir_server.target(), payload(include_past=False),
                           deadline=deadline())
    assert "Tom Bell" not in by_name(answer) and "Rita Shah" in by_name(answer)


def test_resolves_references_when_the_server_does_not_include(
        fhir_server: FhirServer, client: FhirR4Client) -> None:
    fhir_server.include = False
    answer = client.lookup(fhir_server.target(), payload(), deadline=deadline())
    assert by_name(answer)["Rita Shah"]["organisation"] == "Kirklees Community Health"
    assert len(answer["professionals"]) == 4


def test_demographic_search_without_nhs_number(fhir_server: FhirServer,
                                               client: FhirR4Client) -> None:
    answer = client.lookup(fhir_server.target(), payload(
        given_name="Amara", family_name="OKAFOR", date_of_birth="2015-03-12", postcodes=[]),
        deadline=deadline())
    assert answer["status"] == "match" and answer["confidence"] >= 0.99
    assert answer["matched_on"] == ["given_name", "family_name", "date_of_birth"]
    assert len(answer["professionals"]) == 4
    # The kit's matching judges what the server found: the same family name and date
    # of birth with another given name is a sibling, at most a possible match.
    sibling = client.lookup(fhir_server.target(), payload(
        given_name="Zara", family_name="Okafor", date_of_birth="2015-03-12"), deadline=deadline())
    assert sibling["status"] == "no_match" and sibling["professionals"] == []


def test_unknown_child_is_no_match(fhir_server: FhirServer, client: FhirR4Client) -> None:
    answer = client.lookup(fhir_server.target(), payload(nhs_number="9990001022"),
                           deadline=deadline())
    assert answer["status"] == "no_match" and answer["professionals"] == []


def test_token_is_cached_and_renewed_after_a_401(fhir_server: FhirServer,
                                                 client: FhirR4Client) -> None:
    client.lookup(fhir_server.target(), payload(), deadline=deadline())
    client.lookup(fhir_server.target(), payload(), deadline=deadline())
    assert fhir_server.token_requests == 1
    fhir_server.tokens.clear()  # the server revokes every token
    answer = client.lookup(fhir_server.target(), payload(), deadline=deadline())
    assert answer["status"] == "match" and fhir_server.token_requests == 2


def test_wrong_credentials_are_an_error(fhir_server: FhirServer, client: FhirR4Client) -> None:
    with pytest.raises(AdapterFailure) as e:
        client.lookup(fhir_server.target(client_secret="wrong"), payload(), deadline=deadline())
    assert e.value.outcome == "error"
    assert e.value.detail == ("could not obtain an access token: the token endpoint refused "
                              "the client credentials (HTTP 401 invalid_client)")


def test_no_credentials_means_401_reported(fhir_server: FhirServer,
                                           client: FhirR4Client) -> None:
    target = Target(id="x", url=fhir_server.base, timeout_ms=3000)
    with pytest.raises(AdapterFailure) as e:
        client.lookup(target, payload(), deadline=deadline())
    assert "HTTP 401" in e.value.detail


def test_operation_outcome_is_reported_without_patient_data(
        fhir_server: FhirServer, client: FhirR4Client) -> None:
    fhir_server.fail = "outcome"
    with pytest.raises(AdapterFailure) as e:
        client.lookup(fhir_server.target(), payload(), deadline=deadline())
    assert e.value.outcome == "error"
    assert "HTTP 500: OperationOutcome error/processing" in e.value.detail
    assert NHS not in e.value.detail


def test_the_deadline_bounds_the_whole_lookup(fhir_server: FhirServer,
                                              client: FhirR4Client) -> None:
    fhir_server.fail = "slow"
    with pytest.raises(AdapterFailure) as e:
        client.lookup(fhir_server.target(), payload(), deadline=deadline(0.5))
    assert e.value.outcome == "timeout"


def test_tokens_shared_through_redis(fhir_server: FhirServer, redis_url: str,
                                     redis_prefix: str) -> None:
    conn = redis.Redis.from_url(redis_url)
    first = FhirR4Client(tokens=RedisTokenCache(conn, redis_prefix))
    second = FhirR4Client(tokens=RedisTokenCache(conn, redis_prefix))
    try:
        first.lookup(fhir_server.target(), payload(), deadline=deadline())
        second.lookup(fhir_server.target(), payload(), deadline=deadline())
        assert fhir_server.token_requests == 1
        keys = list(conn.scan_iter(match=f"{redis_prefix}fhir-token:*"))
        assert len(keys) == 1 and 0 < conn.ttl(keys[0]) <= 3600 - 30
    finally:
        first.close()
        second.close()
        conn.close()


def test_short_lived_tokens_are_kept_for_half_their_life(
        fhir_server: FhirServer, redis_url: str, redis_prefix: str) -> None:
    fhir_server.expires_in = 10
    conn = redis.Redis.from_url(redis_url)
    c = FhirR4Client(tokens=RedisTokenCache(conn, redis_prefix))
    try:
        c.lookup(fhir_server.target(), payload(), deadline=deadline())
        c.lookup(fhir_server.target(), payload(), deadline=deadline())
        keys = list(conn.scan_iter(match=f"{redis_prefix}fhir-token:*"))
        assert fhir_server.token_requests == 1
        assert len(keys) == 1 and 0 < conn.ttl(keys[0]) <= 5
    finally:
        c.close()
        conn.close()
