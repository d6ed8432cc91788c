"""A FHIR server's OperationOutcome, kept for the authority's outcome detail
without any patient data: pure functions.

Servers put useful words in ``issue.diagnostics`` and ``issue.details.text``
("Unknown search parameter 'foo'", "Too many includes") and, as often, the
request they refused ("no Patient with identifier …|9434765919"). So each
text is kept only after:

- every value the broker sent about the child (NHS number, names, date of
  birth, postcodes, the patient's id on that server) is cut out wherever it
  appears, case and spacing aside;
- every capitalised word that is not a FHIR resource type, a known acronym or a
  word servers start their messages with (:data:`KEPT_WORDS`) is masked: a name
  the server took from its own record ("no CareTeam for Okafor") was never sent,
  and is not shaped like anything but a word;
- whatever could still be a person's detail is masked by its shape: runs of 6
  or more digits (NHS numbers, phone numbers), dates, e-mail addresses, UK
  postcodes, the values of query parameters (``family=…``) and quoted text
  that holds a digit or an ``@``;
- control and bidirectional characters are dropped and each text is cut to
  :data:`MAX_TEXT` characters, at most :data:`MAX_ISSUES` issues.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable
from typing import Any

MAX_ISSUES = 3
MAX_TEXT = 160
MASK = "[…]"


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())



#: FHIR R4 resource types: capitalised words a diagnostic may name
RESOURCE_TYPES = _words("""
Account ActivityDefinition AdverseEvent AllergyIntolerance Appointment AppointmentResponse
AuditEvent Basic Binary BodyStructure Bundle CapabilityStatement CarePlan CareTeam
ChargeItem Claim ClaimResponse ClinicalImpression CodeSystem Communication
CommunicationRequest CompartmentDefinition Composition ConceptMap Condition Consent
Contract Coverage DetectedIssue Device DiagnosticReport DocumentReference DomainResource
Encounter Endpoint EpisodeOfCare Flag Goal Group HealthcareService ImagingStudy Immunization
List Location Medication MedicationRequest MedicationStatement MessageHeader NamingSystem
Observation OperationDefinition OperationOutcome Organization OrganizationAffiliation
Parameters Patient Person PlanDefinition Practitioner PractitionerRole Procedure Provenance
Questionnaire QuestionnaireResponse RelatedPerson Resource RiskAssessment Schedule
SearchParameter ServiceRequest Slot Specimen StructureDefinition Subscription Task ValueSet
""")
#: Acronyms and the words servers start their messages with: kept as they are
KEPT_WORDS = RESOURCE_TYPES | _words("""
HTTP HTTPS HAPI FHIR JSON XML URL URI ID GET POST OAuth SMART SNOMED NHS UK ODS R4 R4B
A An The This That No Not None Unknown Invalid Unsupported Missing Multiple Duplicate Too
Error Warning Failed Failure Unable Cannot Could Resource Search Parameter Parameters Value
Request Response Server Internal Access Forbidden Token Bad Only Found Include Includes
Page Paging Count Timeout Expression Reference References Type Version Operation
""")
ERROR_CODE = re.compile(r"^[A-Z]{2,10}-[0-9]{1,6}$")  # HAPI-2001
WORD = re.compile(r"(?<![\w/#:|=.-])[^\W\d_][\w'’-]*")
CODE = re.compile(r"^[a-z][a-z-]{0,39}$")
SHAPES = (
    re.compile(r"(?:(?<=Patient/)|(?<=Person/))[^\s'\",;)]+"),  # a person's record id
    re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+"),  # e-mail
    re.compile(r"\b\d{4}-\d{2}-\d{2}(?:T[0-9:.+-Z]*)?"),  # ISO date / dateTime
    re.compile(r"\b\d{1,2}[/.]\d{1,2}[/.]\d{2,4}\b"),  # 12/03/2015
    re.compile(r"\b[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}\b", re.IGNORECASE),  # postcode
    re.compile(r"\d(?:[\s-]?\d){5,}"),  # NHS number, phone: 6+ digits, spaced or not
    re.compile(r"(?<=[=|])[^&\s'\",;)]+"),  # a query value: family=Okafor, system|value
    re.compile(r"(['\"])[^'\"]*[0-9@][^'\"]*\1"),  # quoted text with a digit or an @
)


def _plain(text: str) -> str:
    """No control, format (bidi) or line-break characters; spaces collapsed."""
    kept = "".join(" " if unicodedata.category(ch) in {"Cc", "Cf", "Zl", "Zp"} else ch
                   for ch in text)
    return " ".join(kept.split())


def sanitise(text: str, sent: Iterable[str] = ()) -> str:
    """``text`` without the values in ``sent`` or anything shaped like a person's
    detail, one line, at most :data:`MAX_TEXT` characters."""
    out = _plain(str(text))[:2000]
    for value in sorted({v for v in sent if v and len(v.strip()) >= 2}, key=len,
                        reverse=True):
        pattern = r"[\s-]*".join(re.escape(ch) for ch in value.strip() if not ch.isspace())
        out = re.sub(pattern, MASK, out, flags=re.IGNORECASE)
    for shape in SHAPES:
        out = shape.sub(MASK, out)
    out = WORD.sub(lambda m: m[0] if m[0] in KEPT_WORDS or ERROR_CODE.match(m[0]) or not any(
        ch.isupper() for ch in m[0]) else MASK, out)
    if len(out) > MAX_TEXT:
        out = out[:MAX_TEXT - 1].rstrip() + "…"
    return out


def outcome_detail(body: bytes, sent: Iterable[str] = ()) -> str:
    """``": OperationOutcome error/not-supported: Unknown search parameter 'foo'"``
    for an OperationOutcome body (severity/code, and each issue's sanitised
    diagnostics), ``""`` for anything else."""
    try:
        data: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return ""
    if not isinstance(data, dict) or data.get("resourceType") != "OperationOutcome":
        return ""
    sent = tuple(sent)
    parts = []
    for issue in [i for i in data.get("issue") or [] if isinstance(i, dict)][:MAX_ISSUES]:
        severity = str(issue.get("severity") or "?")
        code = str(issue.get("code") or "?")
        named = f"{severity if CODE.match(severity) else '?'}/{code if CODE.match(code) else '?'}"
        details = issue.get("details") if isinstance(issue.get("details"), dict) else {}
        text = issue.get("diagnostics") or (details or {}).get("text") or ""
        said = sanitise(text, sent) if isinstance(text, str) else ""
        parts.append(f"{named}: {said}" if said else named)
    return f": OperationOutcome {'; '.join(parts)}" if parts else ": OperationOutcome"
