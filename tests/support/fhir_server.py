"""A real FHIR server on loopback for the FHIR R4 client's tests: a small Flask
server holding UK Core-shaped resources (each validated with the
``fhir.resources`` R4B models), with an OAuth2 token endpoint (client secret,
or SMART Backend Services client assertions verified against a registered
JWKS), 401s, OperationOutcomes, paging, and ``_include`` that can be switched off."""

from __future__ import annotations

import base64
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.careteam import CareTeam
from fhir.resources.R4B.episodeofcare import EpisodeOfCare
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.practitionerrole import PractitionerRole
from flask import Flask, Response, jsonify, request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from werkzeug.serving import make_server

from adapters.base import Target
from adapters.fhir_r4 import NHS_NUMBER_SYSTEM, FhirR4Client
from adapters.smart_auth import ASSERTION_TYPE

MODELS = {m.__name__: m for m in (Patient, CareTeam, EpisodeOfCare, Organization,
                                  Practitioner, PractitionerRole, OperationOutcome, Bundle,
                                  CapabilityStatement)}
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


def verify_assertion(form: Any, jwks: dict[str, Any] | None, *, token_url: str,
                     client_id: str, seen_jti: set[str], now: float) -> tuple[str | None, Any]:
    """A SMART Backend Services token request checked as a FHIR server must:
    ``(reason refused, None)`` or ``(None, the assertion's claims)``."""
    if form.get("grant_type") != "client_credentials":
        return "grant_type", None
    if form.get("client_assertion_type") != ASSERTION_TYPE or not form.get("scope"):
        return "client_assertion_type or scope", None
    if not jwks:
        return "no JWKS registered", None
    try:
        token = jwt.decode(form.get("client_assertion", ""), KeySet.import_key_set(jwks),
                           algorithms=["ES384", "RS384"])
    except (JoseError, ValueError):
        return "signature", None
    claims, header = token.claims, token.header
    if not header.get("kid") or header["kid"] not in {k.get("kid") for k in jwks["keys"]}:
        return "kid", None
    if claims.get("aud") != token_url:
        return "aud", None
    if not claims.get("iss") == claims.get("sub") == client_id:
        return "iss/sub", None
    exp = claims.get("exp")
    if not isinstance(exp, int) or not now < exp <= now + 300:
        return "exp", None
    jti = claims.get("jti")
    if not jti or jti in seen_jti:
        return "jti", None
    seen_jti.add(jti)
    return None, claims


def outcome(code: str, text: str, severity: str = "error") -> dict[str, Any]:
    return valid({"resourceType": "OperationOutcome",
                  "issue": [{"severity": severity, "code": code, "diagnostics": text}]})


class FhirServer:
    """The switches a test may turn: ``include``, ``fail``, ``page_size`` (the most
    entries a page holds, whatever ``_count`` asks), ``expires_in``; where the server
    thinks it lives: ``public_base`` (written in its links and ``fullUrl``s, as behind
    a proxy), ``declares`` (``"self"``: its Bundles' ``self`` links say so;
    ``"metadata"``: only ``CapabilityStatement.implementation.url`` does),
    ``next_base`` (its ``next`` links alone point there: another server)."""

    def __init__(self) -> None:
        self.store = {f"{r['resourceType']}/{r['id']}": r for r in resources()}
        self.tokens: set[str] = set()
        self.token_requests = 0
        self.smart_jwks: dict[str, Any] | None = None  # the client's registered public keys
        self.smart_config = False  # serve .well-known/smart-configuration
        self.assertions: list[dict[str, Any]] = []  # accepted client assertions' claims
        self.refusals: list[str] = []  # why assertions were refused
        self.seen_jti: set[str] = set()
        self.include = True
        self.fail: str | None = None
        self.page_size = 1
        self.expires_in = 3600
        self.searches: list[str] = []
        self.counts: list[str | None] = []  # each search's _count
        self.reads: list[str] = []  # each read by id
        self.requests = 0  # every FHIR request (not token requests)
        self.public_base: str | None = None
        self.declares: str | None = "self"
        self.next_base: str | None = None
        self.app = self._build()
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.base = self.url + "/R4"
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def add(self, *found: dict[str, Any]) -> None:
        """Serve these resources too (each checked against the R4 models)."""
        for resource in found:
            self.store[f"{resource['resourceType']}/{resource['id']}"] = valid(resource)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def target(self, **credentials: str) -> Target:
        creds = {"token_url": f"{self.url}/token", "client_id": CLIENT_ID,
                 "client_secret": CLIENT_SECRET, **credentials}
        return Target(id="kirklees-health", url=self.base, timeout_ms=3000, credentials=creds)

    def smart_target(self, private_key: str, **credentials: str) -> Target:
        """SMART Backend Services credentials (no client secret)."""
        creds = {"auth": "smart_backend", "token_url": f"{self.url}/token",
                 "client_id": CLIENT_ID, "private_key": private_key, **credentials}
        return Target(id="kirklees-health", url=self.base, timeout_ms=3000,
                      credentials={k: v for k, v in creds.items() if v})

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
            if "client_assertion" in request.form:
                return smart_token()
            auth = request.headers.get("Authorization", "")
            expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            if auth != f"Basic {expected}" or request.form.get("grant_type") != \
                    "client_credentials":
                return fhir({"error": "invalid_client"}, 401)
            value = secrets.token_urlsafe(16)
            self.tokens.add(value)
            return fhir({"access_token": value, "token_type": "Bearer",
                         "expires_in": self.expires_in})

        @app.post("/token-moved")
        def token_moved() -> Response:
            """A token endpoint that redirects (the client must not follow it)."""
            return Response(status=307, headers={"Location": f"{self.url}/token"})

        def smart_token() -> Response:
            refused, claims = verify_assertion(
                request.form, self.smart_jwks, token_url=f"{self.url}/token",
                client_id=CLIENT_ID, seen_jti=self.seen_jti, now=time.time())
            if refused:
                self.refusals.append(refused)
                return fhir({"error": "invalid_client"}, 401)
            self.assertions.append(claims)
            value = secrets.token_urlsafe(16)
            self.tokens.add(value)
            return fhir({"access_token": value, "token_type": "Bearer",
                         "expires_in": self.expires_in, "scope": request.form["scope"]})

        @app.get("/R4/.well-known/smart-configuration")
        def smart_configuration() -> Response:
            if not self.smart_config:
                return fhir(outcome("not-found", "no SMART configuration"), 404)
            return fhir({"token_endpoint": f"{self.url}/token",
                         "token_endpoint_auth_methods_supported": ["private_key_jwt"],
                         "token_endpoint_auth_signing_alg_values_supported": ["ES384",
                                                                               "RS384"]})

        @app.before_request
        def authorise() -> Response | None:
            if request.path in ("/token", "/token-moved", "/R4/.well-known/smart-configuration",
                                "/R4/metadata"):
                return None
            header = request.headers.get("Authorization", "")
            if not header.startswith("Bearer ") or header[7:] not in self.tokens:
                return fhir(outcome("login", "no valid access token"), 401)
            self.requests += 1
            if self.fail == "outcome":
                return fhir(outcome("processing", f"search failed for {NHS}"), 500)
            if self.fail == "refused":
                return fhir(outcome("not-supported", "Unknown search parameter '_foo' for "
                                    f"Patient?identifier={NHS_NUMBER_SYSTEM}|{NHS} (okafor)"),
                            400)
            if self.fail == "slow":
                time.sleep(1.0)
            return None

        @app.get("/R4/metadata")
        def metadata() -> Response:
            """A CapabilityStatement; with ``declares = "metadata"`` it names the
            server's ``public_base`` in ``implementation.url``."""
            self.requests += 1
            statement: dict[str, Any] = {
                "resourceType": "CapabilityStatement", "status": "active",
                "date": "2026-01-01", "kind": "instance", "fhirVersion": "4.0.1",
                "format": ["json"], "rest": [{"mode": "server"}]}
            if self.public_base and self.declares == "metadata":
                statement["implementation"] = {"description": "test", "url": self.public_base}
            return fhir(valid(statement))

        @app.get("/R4/<kind>/<rid>")
        @app.get("/R4/<kind>/<rid>/_history/<vid>")
        def read(kind: str, rid: str, vid: str | None = None) -> Response:
            self.reads.append(request.path[len("/R4/"):])
            found = self.store.get(f"{kind}/{rid}")
            if found is None:
                return fhir(outcome("not-found", f"{kind}/{rid} is not known"), 404)
            return fhir(found)

        @app.get("/R4/<kind>")
        def search(kind: str) -> Response:
            self.searches.append(kind)
            args = request.args
            self.counts.append(args.get("_count"))
            size = min(int(args.get("_count") or 10), self.page_size)
            base = self.public_base or self.base
            matches = [r for r in self.store.values() if r["resourceType"] == kind
                       and self._matches(r, args)]
            page = int(args.get("_page", "1"))
            chunk = matches[(page - 1) * size: page * size]
            entries = [{"fullUrl": f"{base}/{kind}/{r['id']}", "resource": r,
                        "search": {"mode": "match"}} for r in chunk]
            if self.include:
                for name in args.getlist("_include"):
                    for r in chunk:
                        for inc in self._included(r, name):
                            if inc not in self.store:
                                continue
                            entries.append({"fullUrl": f"{base}/{inc}",
                                            "resource": self.store[inc],
                                            "search": {"mode": "include"}})
            here = request.full_path.rstrip("?")[len("/R4"):]
            links = [{"relation": "self", "url": (base if self.declares == "self"
                                                  else self.base) + here}]
            if page * size < len(matches):
                query = [(k, v) for k, v in args.items(multi=True) if k != "_page"]
                query.append(("_page", str(page + 1)))
                from urllib.parse import urlencode
                links.append({"relation": "next", "url": f"{self.next_base or base}/{kind}?"
                                                         f"{urlencode(query)}"})
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
        if "family" in args or "given" in args:  # FHIR string search: starts with
            family, given = args.get("family", "").lower(), args.get("given", "").lower()
            return (args.get("birthdate") in (None, resource.get("birthDate")) and any(
                n.get("family", "").lower().startswith(family)
                and any(g.lower().startswith(given) for g in n.get("given") or [""])
                for n in resource.get("name", [])))
        if "patient" in args:
            subject = resource.get("subject") or resource.get("patient") or {}
            return str(subject.get("reference") or "").split("/_history")[0] == args["patient"]
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
                yield str(r["reference"]).split("/_history")[0]



def serve() -> Iterator[FhirServer]:
    """Each test module's ``fhir_server`` fixture, made there with
    ``fhir_server = pytest.fixture(serve, name="fhir_server")`` (a fixture imported
    by name would be redefined by the tests' parameters: ruff F811)."""
    server = FhirServer()
    yield server
    server.close()


def fhir_client() -> Iterator[FhirR4Client]:
    """The FHIR R4 client under test, as ``serve`` (``name="client"``)."""
    client = FhirR4Client(user_agent="federator-test")
    yield client
    client.close()


def payload(include_past: bool = True, **child: Any) -> dict[str, Any]:
    return {"lookup_id": "L-" + uuid.uuid4().hex, "include_past": include_past,
            "child": child or {"nhs_number": NHS, "postcodes": []}}


def deadline(seconds: float = 5.0) -> float:
    return time.monotonic() + seconds


def by_name(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in answer["professionals"]}
