"""The FHIR test server (``support/fhir_server.py``) with the cases of the kit's
policy and of finding the child the way FHIR servers do: sensitive services
coded in SNOMED CT, restricted records (``meta.security``), a hyphenated family
name, and ``Patient/$match`` (IHE PDQm) offered in the CapabilityStatement when
``offer_match`` is set, answering the grades a test gives in ``grades``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.healthcareservice import HealthcareService
from flask import Flask, Response, jsonify, request

from adapters.fhir_match import MATCH_GRADE
from adapters.fhir_policy import CONFIDENTIALITY, SNOMED
from adapters.fhir_r4 import NHS_NUMBER_SYSTEM
from support.fhir_server import FhirServer, concept, outcome, ref, telecom, valid

SEXUAL_HEALTH = "788122004"
SUBSTANCE_MISUSE = "109201000000109"
MENTAL_HEALTH = "708168004"
FAMILY_PLANNING = "310031001"
SCHOOL_NURSING = "931821000000105"  # not sensitive
LOCAL_FLAGS = "https://example.org/CodeSystem/local-flags"

DANA_NHS, MIXED_NHS = "9434765870", "9434765838"
LILY_NHS, ROSA_NHS = "9434765846", "9434765854"
CHILDREN = {
    # id: (nhs, given, family, born, postcode, security)
    "pat-dana": (DANA_NHS, "Dana", "Quill", "2009-05-04", "LS7 3AB", None),
    "pat-mixed": (MIXED_NHS, "Sam", "Mixed", "2012-02-02", "LS8 1AA", None),
    "pat-r": ("9434765862", "Remy", "Restricted", "2013-03-03", "LS9 1AA", (CONFIDENTIALITY, "R")),
    "pat-v": ("9434765803", "Vera", "Veryrestricted", "2013-04-04", "LS9 2AA",
              (CONFIDENTIALITY, "V")),
    "pat-local": ("9434765811", "Lola", "Flagged", "2013-05-05", "LS9 3AA",
                  (LOCAL_FLAGS, "DV-SHIELD")),
    "pat-lily": (LILY_NHS, "Lily", "Okafor-Smith", "2014-02-02", "LS6 4AB", None),
    "pat-rosa": (ROSA_NHS, "Rosa", "Twin", "2016-06-06", "LS6 5AB", None),
}


def snomed(code: str, text: str) -> dict[str, Any]:
    return {"coding": [{"system": SNOMED, "code": code, "display": text}], "text": text}


def patient(pid: str) -> dict[str, Any]:
    nhs, given, family, born, postcode, security = CHILDREN[pid]
    resource: dict[str, Any] = {
        "resourceType": "Patient", "id": pid,
        "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": nhs}],
        "name": [{"use": "official", "family": family, "given": [given]}],
        "birthDate": born, "address": [{"postalCode": postcode}]}
    if security:
        resource["meta"] = {"security": [{"system": security[0], "code": security[1]}]}
    return resource


def practitioner(pid: str, given: str, family: str) -> dict[str, Any]:
    return {"resourceType": "Practitioner", "id": pid,
            "name": [{"family": family, "given": [given]}],
            "telecom": telecom(email=f"{given.lower()}.{family.lower()}@example.nhs.uk")}


def team(tid: str, subject: str, name: str, category: dict[str, Any],
         members: list[dict[str, str]]) -> dict[str, Any]:
    return {"resourceType": "CareTeam", "id": tid, "status": "active", "name": name,
            "subject": ref("Patient", subject), "category": [category],
            "managingOrganization": [ref("Organization", "org-1")],
            "participant": [{"member": m} for m in members]}


def policy_resources() -> list[dict[str, Any]]:
    people = [practitioner("prac-nia", "Nia", "Holt"), practitioner("prac-jo", "Jo", "Reed"),
              practitioner("prac-kim", "Kim", "Lowe"), practitioner("prac-max", "Max", "Mind"),
              practitioner("prac-fay", "Fay", "Plan"), practitioner("prac-ola", "Ola", "Open")]
    roles = [
        {"resourceType": "PractitionerRole", "id": "role-jo", "active": True,
         "practitioner": ref("Practitioner", "prac-jo"),
         "organization": ref("Organization", "org-1"), "code": [concept("Nurse")],
         "specialty": [snomed(SUBSTANCE_MISUSE, "Substance misuse team")]},
        {"resourceType": "PractitionerRole", "id": "role-fay", "active": True,
         "practitioner": ref("Practitioner", "prac-fay"),
         "organization": ref("Organization", "org-1"), "code": [concept("Nurse")],
         "healthcareService": [ref("HealthcareService", "hs-fp")]},
    ]
    service = {"resourceType": "HealthcareService", "id": "hs-fp", "active": True,
               "name": "Young people's clinic",
               "type": [snomed(FAMILY_PLANNING, "Family planning service")]}
    school = snomed(SCHOOL_NURSING, "School nursing service")
    teams = [
        # Dana: known here only through a sexual health team
        team("team-dana", "pat-dana", "Sexual health outreach",
             snomed(SEXUAL_HEALTH, "Sexual health service"), [ref("Practitioner", "prac-nia")]),
        # Sam: a school nurse (shown), a substance misuse nurse in the same team (by
        # role specialty) and a family planning nurse (by the role's HealthcareService)
        team("team-mixed", "pat-mixed", "School health", school, [
            ref("Practitioner", "prac-kim"), ref("PractitionerRole", "role-jo"),
            ref("PractitionerRole", "role-fay")]),
        *(team(f"team-{pid[4:]}", pid, "School health", school,
               [ref("Practitioner", "prac-ola")])
          for pid in ("pat-r", "pat-v", "pat-local", "pat-lily", "pat-rosa")),
    ]
    episode = {"resourceType": "EpisodeOfCare", "id": "eoc-mixed", "status": "active",
               "type": [snomed(MENTAL_HEALTH, "Mental health service")],
               "patient": ref("Patient", "pat-mixed"),
               "managingOrganization": ref("Organization", "org-1"),
               "careManager": ref("Practitioner", "prac-max")}
    out = [valid(patient(pid)) for pid in CHILDREN]
    out += [valid(r) for r in (*people, *roles, *teams, episode)]
    HealthcareService.model_validate(service)
    return [*out, service]


MATCH_DEFINITION = "http://hl7.org/fhir/OperationDefinition/Patient-match"


def capability(match: bool) -> dict[str, Any]:
    patient_rest: dict[str, Any] = {"type": "Patient", "interaction": [{"code": "read"},
                                                                       {"code": "search-type"}]}
    if match:
        patient_rest["operation"] = [{"name": "match", "definition": MATCH_DEFINITION}]
    statement = {"resourceType": "CapabilityStatement", "status": "active",
                 "date": "2026-12-01", "kind": "instance", "fhirVersion": "4.0.1",
                 "format": ["application/fhir+json"],
                 "rest": [{"mode": "server", "resource": [patient_rest]}]}
    CapabilityStatement.model_validate(statement)
    return statement


class PolicyFhirServer(FhirServer):
    """Switches beside the base server's: ``offer_match`` and ``grades`` (the
    $match answer: ``[(patient id, grade or None, score or None)]``, in order)."""

    def __init__(self) -> None:
        self.offer_match = False
        self.grades: list[tuple[str, str | None, float | None]] = []
        self.match_asked: list[dict[str, Any]] = []
        self.metadata_reads = 0
        #: a hostile server: every identifier search answers with this Patient
        self.identifier_answer: str | None = None
        super().__init__()
        self.store.update({f"{r['resourceType']}/{r['id']}": r for r in policy_resources()})

    def _matches(self, resource: dict[str, Any], args: Any) -> bool:  # type: ignore[override]
        if "identifier" in args and self.identifier_answer:
            return resource.get("id") == self.identifier_answer
        return FhirServer._matches(resource, args)

    def _build(self) -> Flask:
        app = super()._build()

        def fhir(body: dict[str, Any], status: int = 200) -> Response:
            response = jsonify(body)
            response.status_code = status
            response.content_type = "application/fhir+json"
            return response

        original = app.view_functions.get("metadata")  # the base server's, if it has one

        def metadata() -> Response:
            """The base server's CapabilityStatement (or a plain one), offering
            ``Patient/$match`` when ``offer_match`` is set."""
            self.metadata_reads += 1
            statement = capability(False) if original is None else original().get_json()
            if self.offer_match:
                rest = statement["rest"][0]
                patient = next((r for r in rest.get("resource") or []
                                if r.get("type") == "Patient"), None)
                if patient is None:
                    patient = {"type": "Patient"}
                    rest.setdefault("resource", []).append(patient)
                patient["operation"] = [{"name": "match", "definition": MATCH_DEFINITION}]
            CapabilityStatement.model_validate(statement)
            return fhir(statement)

        if original is None:
            app.add_url_rule("/R4/metadata", "metadata", metadata, methods=["GET"])
        else:
            app.view_functions["metadata"] = metadata

        @app.post("/R4/Patient/$match")
        def match() -> Response:
            if not self.offer_match:
                return fhir(outcome("not-supported", "no $match here"), 404)
            body = request.get_json(force=True, silent=True) or {}
            self.match_asked.append(body)
            entries = []
            for pid, grade, score in self.grades:
                search: dict[str, Any] = {"mode": "match"}
                if score is not None:
                    search["score"] = score
                if grade is not None:
                    search["extension"] = [{"url": MATCH_GRADE, "valueCode": grade}]
                entries.append({"fullUrl": f"{self.base}/Patient/{pid}",
                                "resource": self.store[f"Patient/{pid}"], "search": search})
            bundle = {"resourceType": "Bundle", "type": "searchset", "total": len(entries),
                      "entry": entries}
            Bundle.model_validate(bundle)
            return fhir(bundle)

        return app


def serve_policy() -> Iterator[PolicyFhirServer]:
    """A test module's ``fhir_server`` fixture (as ``support.fhir_server.serve``)."""
    server = PolicyFhirServer()
    yield server
    server.close()
