"""The FHIR R4 client against a real FHIR server on loopback: a small Flask
server holding UK Core-shaped resources (each validated with the
``fhir.resources`` R4B models), with an OAuth2 token endpoint, 401s,
OperationOutcomes, paging, and ``_include`` that can be switched off."""

from __future__ import annotations

import base64
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
import redis
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.careteam import CareTeam
from fhir.resources.R4B.episodeofcare import EpisodeOfCare
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.practitionerrole import PractitionerRole
from flask import Flask, Response, jsonify, request
from werkzeug.serving import make_server

from adapters.base import AdapterFailure, Target
from adapters.fhir_r4 import NHS_NUMBER_SYSTEM, FhirR4Client, RedisTokenCache

pytestmark = pytest.mark.integration

MODELS = {m.__name__: m for m in (Patient, CareTeam, EpisodeOfCare, Organization,
                                  Practitioner, PractitionerRole, OperationOutcome, Bundle)}
NHS = "9434765919"
CLIENT_ID, CLIENT_SECRET = "federator", "s3cret-" + uuid.uuid4().hex
PAST = (date.today() - timedelta(days=400)).isoformat()


def valid(resource: dict[str, Any]) -> dict[str, Any]:
    """Refuse to serve anything the FHIR R4 models do not accept."""
    MODELS[resource["resourceType"]].model_validate(resource)
    return resource


def telecom(phone: str | None = None, email: str | None = None) -> list[dict[str, Any]]:
    out = []
    if phone:
        out.append({"system": "phone", "value": phone, "use": "work"})
    if email:
        out.append({"system": "email", "value": email, "use": "work"})
    return out


def ref(kind: str, rid: str) -> dict[str, str]:
    return {"reference": f"{kind}/{rid}"}


def concept(text: str, code: str = "x") -> dict[str, Any]:
    return {"coding": [{"system": "http://snomed.info/sct", "code": code, "display": text}],
            "text": text}


def resources() -> list[dict[str, Any]]:
    patient = {
        "resourceType": "Patient", "id": "pat-1",
        "meta": {"profile": ["https://fhir.hl7.org.uk/StructureDefinition/UKCore-Patient"]},
        "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": NHS}],
        "name": [{"use": "official", "family": "Okafor", "given": ["Amara"]}],
        "gender": "female", "birthDate": "2015-03-12",
        "address": [{"postalCode": "LS6 2AB"}],
    }
    other = {**patient, "id": "pat-2",
             "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": "9990001014"}],
             "name": [{"family": "Other", "given": ["Child"]}], "birthDate": "2016-01-01"}
    orgs = [
        {"resourceType": "Organization", "id": "org-1", "name": "Kirklees Community Health",
         "identifier": [{"system": "https://fhir.nhs.uk/Id/ods-organization-code",
                         "value": "RXX"}], "telecom": telecom("01484 000000")},
    ]
    practitioners = [
        {"resourceType": "Practitioner", "id": f"prac-{i}",
         "identifier": [{"system": "https://fhir.hl7.org.uk/Id/nmc-number", "value": f"NMC{i}"}],
         "name": [{"family": family, "given": [given], "prefix": ["Ms"]}],
         "telecom": telecom(email=f"{given.lower()}@example.nhs.uk")}
        for i, (given, family) in enumerate(
            [("Rita", "Shah"), ("Tom", "Bell"), ("Una", "Cole"), ("Vic", "Dunn")], start=1)
    ]
    role = {"resourceType": "PractitionerRole", "id": "role-1", "active": True,
            "practitioner": ref("Practitioner", "prac-1"),
            "organization": ref("Organization", "org-1"),
            "code": [concept("School nurse")], "specialty": [concept("School nursing")],
            "telecom": telecom("01484 111111")}
    team = {
        "resourceType": "CareTeam", "id": "team-1", "status": "active",
        "name": "Huddersfield School Nursing", "subject": ref("Patient", "pat-1"),
        "category": [concept("School nursing")],
        "managingOrganization": [ref("Organization", "org-1")],
        "participant": [
            {"role": [concept("School nurse")], "member": ref("PractitionerRole", "role-1"),
             "period": {"start": "2024-09-01"}},
            {"role": [concept("Health visitor")], "member": ref("Practitioner", "prac-2"),
             "onBehalfOf": ref("Organization", "org-1"),
             "period": {"start": "2015-04-01", "end": PAST}},
        ],
    }
    team_2 = {
        "resourceType": "CareTeam", "id": "team-2", "status": "active",
        "name": "Community Paediatrics", "subject": ref("Patient", "pat-1"),
        "category": [concept("Community paediatrics")],
        "participant": [{"role": [concept("Paediatrician")],
                         "member": ref("Practitioner", "prac-3"),
                         "onBehalfOf": ref("Organization", "org-1")}],
    }
    episode = {
        "resourceType": "EpisodeOfCare", "id": "eoc-1", "status": "active",
        "type": [concept("Children's community mental health")],
        "patient": ref("Patient", "pat-1"),
        "managingOrganization": ref("Organization", "org-1"),
        "period": {"start": "2025-01-10"}, "careManager": ref("Practitioner", "prac-4"),
    }
    return [valid(r) for r in (patient, other, *orgs, *practitioners, role, team, team_2,
                               episode)]


def outcome(code: str, text: str, severity: str = "error") -> dict[str, Any]:
    return valid({"resourceType": "OperationOutcome",
                  "issue": [{"severity": severity, "code": code, "diagnostics": text}]})


class FhirServer:
    """The switches a test may turn: ``include``, ``fail``, ``page_size``, ``revoke``."""

    def __init__(self) -> None:
        self.store = {f"{r['resourceType']}/{r['id']}": r for r in resources()}
        self.tokens: set[str] = set()
        self.token_requests = 0
        self.include = True
        self.fail: str | None = None
        self.page_size = 1
        self.expires_in = 3600
        self.searches: list[str] = []
        self.app = self._build()
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.base = self.url + "/R4"
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def target(self, **credentials: str) -> Target:
        creds = {"token_url": f"{self.url}/token", "client_id": CLIENT_ID,
                 "client_secret": CLIENT_SECRET, **credentials}
        return Target(id="kirklees-health", url=self.base, timeout_ms=3000, credentials=creds)

    def _build(self) -> Flask:
        app = Flask("fhir-test-server")

        def fhir(body: dict[str, Any], status: int = 200) -> Response:
            response = jsonify(body)
            response.status_code = status
            response.content_type = "application/fhir+json"
            return response

        @app.post("/token")
        def token() -> Response:
            self.token_requests += 1
            auth = request.headers.get("Authorization", "")
            expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            if auth != f"Basic {expected}" or request.form.get("grant_type") != \
                    "client_credentials":
                return fhir({"error": "invalid_client"}, 401)
            value = secrets.token_urlsafe(16)
            self.tokens.add(value)
            return fhir({"access_token": value, "token_type": "Bearer",
                         "expires_in": self.expires_in})

        @app.before_request
        def authorise() -> Response | None:
            if request.path == "/token":
                return None
            header = request.headers.get("Authorization", "")
            if not header.startswith("Bearer ") or header[7:] not in self.tokens:
                return fhir(outcome("login", "no valid access token"), 401)
            if self.fail == "outcome":
                return fhir(outcome("processing", f"search failed for {NHS}"), 500)
            if self.fail == "slow":
                time.sleep(1.0)
            return None

        @app.get("/R4/<kind>/<rid>")
        def read(kind: str, rid: str) -> Response:
            found = self.store.get(f"{kind}/{rid}")
            if found is None:
                return fhir(outcome("not-found", f"{kind}/{rid} is not known"), 404)
            return fhir(found)

        @app.get("/R4/<kind>")
        def search(kind: str) -> Response:
            self.searches.append(kind)
            args = request.args
            matches = [r for r in self.store.values() if r["resourceType"] == kind
                       and self._matches(r, args)]
            page = int(args.get("_page", "1"))
            chunk = matches[(page - 1) * self.page_size: page * self.page_size]
            entries = [{"fullUrl": f"{self.base}/{kind}/{r['id']}", "resource": r,
                        "search": {"mode": "match"}} for r in chunk]
            if self.include:
                for name in args.getlist("_include"):
                    for r in chunk:
                        for inc in self._included(r, name):
                            entries.append({"fullUrl": f"{self.base}/{inc}",
                                            "resource": self.store[inc],
                                            "search": {"mode": "include"}})
            links = [{"relation": "self", "url": request.url}]
            if page * self.page_size < len(matches):
                query = [(k, v) for k, v in args.items(multi=True) if k != "_page"]
                query.append(("_page", str(page + 1)))
                from urllib.parse import urlencode
                links.append({"relation": "next",
                              "url": f"{self.base}/{kind}?{urlencode(query)}"})
            bundle = valid({"resourceType": "Bundle", "type": "searchset",
                            "total": len(matches), "link": links, "entry": entries})
            return fhir(bundle)

        return app

    @staticmethod
    def _matches(resource: dict[str, Any], args: Any) -> bool:
        if "identifier" in args:
            system, _, value = args["identifier"].partition("|")
            return any(i.get("system") == system and i.get("value") == value
                       for i in resource.get("identifier", []))
        if "family" in args:
            return (resource.get("birthDate") == args.get("birthdate") and any(
                n.get("family", "").lower().startswith(args["family"].lower())
                for n in resource.get("name", [])))
        if "patient" in args:
            subject = resource.get("subject") or resource.get("patient") or {}
            return subject.get("reference") == args["patient"]
        return True

    @staticmethod
    def _included(resource: dict[str, Any], name: str) -> Iterator[str]:
        refs: list[Any] = []
        if name == "CareTeam:participant":
            refs = [p.get("member") for p in resource.get("participant", [])]
        elif name == "EpisodeOfCare:care-manager":
            refs = [resource.get("careManager")]
        elif name == "EpisodeOfCare:organization":
            refs = [resource.get("managingOrganization")]
        for r in refs:
            if r and r.get("reference"):
                yield r["reference"]


@pytest.fixture
def fhir_server() -> Iterator[FhirServer]:
    server = FhirServer()
    yield server
    server.close()


@pytest.fixture
def client() -> Iterator[FhirR4Client]:
    c = FhirR4Client(user_agent="federator-test")
    yield c
    c.close()


def payload(include_past: bool = True, **child: Any) -> dict[str, Any]:
    return {"lookup_id": "L-" + uuid.uuid4().hex, "include_past": include_past,
            "child": child or {"nhs_number": NHS, "postcodes": []}}


def deadline(seconds: float = 5.0) -> float:
    return time.monotonic() + seconds


def by_name(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in answer["professionals"]}


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
    assert answer["status"] == "match" and answer["confidence"] == 0.9
    assert len(answer["professionals"]) == 4
    # The server searches by "starts with", so "Okaf" finds Okafor: the client insists on equality.
    nobody = client.lookup(fhir_server.target(), payload(
        given_name="Amara", family_name="Okaf", date_of_birth="2015-03-12"), deadline=deadline())
    assert nobody["status"] == "no_match" and nobody["professionals"] == []


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
    assert e.value.outcome == "error" and "access token" in e.value.detail


def test_no_credentials_means_401_reported(fhir_server: FhirServer,
                                           client: FhirR4Client) -> None:
    target = Target(id="x", url=fhir_server.base, timeout_ms=3000)
    with pytest.raises(AdapterFailure) as e:
        client.lookup(target, payload(), deadline=deadline())
    assert "HTTP 401" in e.value.detail


def test_operation_outcome_is_reported_without_its_diagnostics(
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
