"""The kit's local policy for FHIR R4 endpoints: sensitive services and restricted
records (pure functions over parsed FHIR JSON; no network).

- **Sensitive services.** An involvement is sensitive when its CareTeam's
  ``category``, its EpisodeOfCare's ``type``, its PractitionerRole's
  ``specialty`` or a HealthcareService of that role (``type``) carries a coding
  from the endpoint's sensitive value set (:data:`DEFAULT_SENSITIVE` unless the
  registry holds an override: docs/fhir.md). It is shared only when the basis
  covers sensitive services (:func:`adapters.kit.policy.basis_allows_sensitive`,
  the kit's own rule); a child known only through such involvement answers as
  not known, as at the kit.
- **Restricted records.** A Patient whose ``meta.security`` carries HL7 v3
  Confidentiality ``R`` or ``V`` (always) or a label the endpoint is configured
  with answers as a shielded child does at the kit: a match with no
  professionals and a notice naming the route the registry holds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from adapters.fhir_r4_mapping import ref
from adapters.kit.policy import DEFAULT_SHIELD_NOTICE, basis_allows_sensitive

SNOMED = "http://snomed.info/sct"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
#: Restricted and very restricted: always a restricted record, whatever the endpoint says.
ALWAYS_RESTRICTED = frozenset({(CONFIDENTIALITY, "R"), (CONFIDENTIALITY, "V")})
#: The notice for a restricted record when the registry holds a route for it.
ROUTE_NOTICE = ("This child's details are protected. Contact {route}, who will pass your "
                "request to the right person.")

Coding = tuple[str, str]  # (system, code)

#: The default sensitive value set: SNOMED CT UK "Services" concepts (as in UK Core
#: UKCore-CareSettingType) for sexual health, substance misuse and mental health
#: services: (concept id, display, group). docs/fhir.md lists them.
DEFAULT_SENSITIVE: tuple[tuple[str, str, str], ...] = (
    ("788122004", "Sexual health service", "sexual health"),
    ("1240241000000109", "Community sexual and reproductive health service", "sexual health"),
    ("830039004", "Genitourinary medicine service", "sexual health"),
    ("310031001", "Family planning service", "sexual health"),
    ("310062002", "Pregnancy termination service", "sexual health"),
    ("24081000087105", "HIV (human immunodeficiency virus) nurse practitioner service",
     "sexual health"),
    ("24101000087102", "HIV (human immunodeficiency virus) social work service",
     "sexual health"),
    ("109201000000109", "Substance misuse team", "substance misuse"),
    ("788125002", "Addiction service", "substance misuse"),
    ("23941000087103", "Narcotic addiction service", "substance misuse"),
    ("23951000087100", "Opioid dependence service", "substance misuse"),
    ("893261000000103", "Mental health dual diagnosis service", "substance misuse"),
    ("708168004", "Mental health service", "mental health"),
    ("788002001", "Adult mental health service", "mental health"),
    ("89301000000108", "Community mental health team", "mental health"),
    ("310117003", "Child and adolescent psychiatry service", "mental health"),
    ("828811000000104", "Child psychiatry service", "mental health"),
    ("828821000000105", "Adolescent psychiatry service", "mental health"),
    ("310116007", "Psychiatry service", "mental health"),
    ("310027007", "Mental health counselling service", "mental health"),
    ("92151000000102", "Mental health crisis resolution team", "mental health"),
    ("92221000000103", "Mental health home treatment team", "mental health"),
    ("893251000000101", "Mental health recovery and rehabilitation service", "mental health"),
    ("89311000000105", "Crisis prevention assessment and treatment team", "mental health"),
    ("92191000000105", "Early intervention in psychosis team", "mental health"),
    ("91901000000109", "Assertive outreach team", "mental health"),
    ("828281000000107", "Eating disorders service", "mental health"),
    ("310118008", "Forensic psychiatry service", "mental health"),
    ("310119000", "Liaison psychiatry service", "mental health"),
    ("901221000000102", "Perinatal mental health service", "mental health"),
    ("1079481000000104", "Perinatal psychiatry service", "mental health"),
    ("893531000000105", "Psychiatric intensive care service", "mental health"),
    ("893381000000103", "Clinical psychology service", "mental health"),
    ("310124002", "Psychotherapy service", "mental health"),
    ("1323621000000104", "Medical psychotherapy service", "mental health"),
)
DEFAULT_SENSITIVE_CODES: frozenset[Coding] = frozenset(
    (SNOMED, code) for code, _, _ in DEFAULT_SENSITIVE)

_SYSTEM = re.compile(r"^(https?://[^\s|]{1,200}|urn:(oid|uuid):[^\s|]{1,120})\Z")
_CODE = re.compile(r"^[^\s|]{1,64}\Z")
_SCTID = re.compile(r"^[1-9][0-9]{5,17}\Z")


# --------------------------------------------------------------------------
# The endpoint's policy (the registry's ``policy``, checked there: schemas.py)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class FhirPolicy:
    sensitive: frozenset[Coding] = DEFAULT_SENSITIVE_CODES
    restricted: frozenset[Coding] = ALWAYS_RESTRICTED
    #: who a practitioner contacts about a restricted record (the registry's)
    route: str | None = None
    authority: str = "the authority"


def parse_coding(text: str) -> Coding:
    """``"system|code"``, or a bare SNOMED CT concept id; ``ValueError`` naming the fault."""
    value = text.strip()
    if "|" not in value:
        if not _SCTID.match(value) or not verhoeff_ok(value):
            raise ValueError(f"{value[:70]!r} is not a SNOMED CT concept id; give "
                             "system|code for another code system")
        return SNOMED, value
    system, _, code = value.partition("|")
    if not _SYSTEM.match(system):
        raise ValueError(f"{system[:70]!r} is not a code system URI (http(s)://… or urn:oid:…)")
    if not _CODE.match(code):
        raise ValueError(f"{code[:70]!r} is not a code (1 to 64 characters, no spaces or |)")
    if system == SNOMED and (not _SCTID.match(code) or not verhoeff_ok(code)):
        raise ValueError(f"{code[:70]!r} is not a SNOMED CT concept id")
    return system, code


def verhoeff_ok(digits: str) -> bool:
    """SNOMED CT identifiers end in a Verhoeff check digit."""
    d = ((0, 1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
         (2, 3, 4, 0, 1, 7, 8, 9, 5, 6), (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
         (4, 0, 1, 2, 3, 9, 5, 6, 7, 8), (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
         (6, 5, 9, 8, 7, 1, 0, 4, 3, 2), (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
         (8, 7, 6, 5, 9, 3, 2, 1, 0, 4), (9, 8, 7, 6, 5, 4, 3, 2, 1, 0))
    p = ((0, 1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
         (5, 8, 0, 3, 7, 9, 6, 1, 4, 2), (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
         (9, 4, 5, 3, 1, 2, 6, 8, 7, 0), (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
         (2, 7, 9, 3, 8, 0, 6, 4, 1, 5), (7, 0, 4, 6, 9, 1, 3, 2, 5, 8))
    check = 0
    for i, ch in enumerate(reversed(digits)):
        check = d[check][p[i % 8][int(ch)]]
    return check == 0


def sensitive_codes(policy: Mapping[str, Any] | None) -> frozenset[Coding]:
    """The endpoint's sensitive value set: the default unless ``include_default``
    is false, plus its own ``sensitive_codes``."""
    policy = policy or {}
    codes = set(DEFAULT_SENSITIVE_CODES) if policy.get("include_default", True) else set()
    codes.update(parse_coding(c) for c in policy.get("sensitive_codes") or ())
    return frozenset(codes)


def restricted_labels(policy: Mapping[str, Any] | None) -> frozenset[Coding]:
    """v3-Confidentiality R and V, and the endpoint's own ``restricted_labels``."""
    extra = (parse_coding(c) for c in (policy or {}).get("restricted_labels") or ())
    return ALWAYS_RESTRICTED | frozenset(extra)


def policy_for(policy: Mapping[str, Any] | None, *, authority: str = "") -> FhirPolicy:
    """The policy the client applies for one endpoint (its registry ``policy``)."""
    route = str((policy or {}).get("restricted_route") or "").strip() or None
    return FhirPolicy(sensitive=sensitive_codes(policy), restricted=restricted_labels(policy),
                      route=route, authority=authority or "the authority")


# --------------------------------------------------------------------------
# Restricted records
# --------------------------------------------------------------------------


def codings(values: Any) -> Iterator[Coding]:
    """Every (system, code) of a CodeableConcept, a list of them, or of Codings."""
    if isinstance(values, dict):
        values = [values]
    for value in values if isinstance(values, list) else ():
        if not isinstance(value, dict):
            continue
        inner = value.get("coding")
        for coding in inner if isinstance(inner, list) else [value]:
            if isinstance(coding, dict) and isinstance(coding.get("system"), str) \
                    and isinstance(coding.get("code"), str):
                yield coding["system"], coding["code"]


def is_restricted(patient: Mapping[str, Any], policy: FhirPolicy) -> bool:
    meta = patient.get("meta")
    labels = meta.get("security") if isinstance(meta, dict) else None
    return any(c in policy.restricted for c in codings(labels))


def restricted_notice(policy: FhirPolicy) -> str:
    """The kit's shield notice: the registry's route, else the authority's front door."""
    if policy.route:
        return ROUTE_NOTICE.format(route=policy.route)
    return DEFAULT_SHIELD_NOTICE.format(authority=policy.authority)


# --------------------------------------------------------------------------
# Sensitive services
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Screened:
    teams: list[dict[str, Any]]
    episodes: list[dict[str, Any]]
    #: some involvement was held back for want of a covering basis
    withheld: bool


def service_references(known: Mapping[str, Mapping[str, Any]]) -> Iterator[str]:
    """The HealthcareServices the PractitionerRoles read so far name (their
    ``type`` may make a role sensitive)."""
    for resource in list(known.values()):
        if resource.get("resourceType") == "PractitionerRole":
            for service in resource.get("healthcareService") or []:
                if r := ref(service):
                    yield r


def _member(reference: Any, holder: Mapping[str, Any],
            known: Mapping[str, Mapping[str, Any]]) -> Mapping[str, Any]:
    """The resource a reference names: contained in ``holder`` (``#id``) or read."""
    text = reference.get("reference") if isinstance(reference, dict) else None
    if isinstance(text, str) and text.startswith("#"):
        for inner in holder.get("contained") or []:
            if isinstance(inner, dict) and inner.get("id") == text[1:]:
                return inner
        return {}
    return known.get(ref(reference) or "") or {}


def _sensitive(concepts: Any, policy: FhirPolicy) -> bool:
    return any(c in policy.sensitive for c in codings(concepts))


def role_sensitive(role: Mapping[str, Any], holder: Mapping[str, Any],
                   known: Mapping[str, Mapping[str, Any]], policy: FhirPolicy) -> bool:
    """A PractitionerRole whose specialty, or one of whose HealthcareServices' type,
    is in the sensitive value set (anything else: not a role, not sensitive)."""
    if role.get("resourceType") != "PractitionerRole":
        return False
    if _sensitive(role.get("specialty"), policy):
        return True
    return any(_sensitive(_member(s, role, known).get("type"), policy)
               or _sensitive(_member(s, holder, known).get("type"), policy)
               for s in role.get("healthcareService") or [])


def screen(teams: Iterable[dict[str, Any]], episodes: Iterable[dict[str, Any]],
           known: Mapping[str, Mapping[str, Any]], policy: FhirPolicy,
           basis: Mapping[str, Any]) -> Screened:
    """The CareTeams (their participants) and EpisodeOfCares this basis may see.

    A CareTeam named by a sensitive EpisodeOfCare's ``team`` is sensitive too."""
    teams, episodes = list(teams), list(episodes)
    if basis_allows_sensitive(basis) or not policy.sensitive:
        return Screened(teams, episodes, withheld=False)
    withheld = False
    kept_episodes = []
    hidden_teams: set[str] = set()
    for episode in episodes:
        manager = _member(episode.get("careManager"), episode, known)
        if _sensitive(episode.get("type"), policy) or role_sensitive(manager, episode, known,
                                                                      policy):
            withheld = True
            hidden_teams.update(filter(None, (ref(t) for t in episode.get("team") or [])))
        else:
            kept_episodes.append(episode)
    kept_teams = []
    for team in teams:
        if f"CareTeam/{team.get('id')}" in hidden_teams or _sensitive(team.get("category"),
                                                                       policy):
            withheld = True
            continue
        participants = []
        for p in team.get("participant") or []:
            member = _member(p.get("member") if isinstance(p, dict) else None, team, known)
            if role_sensitive(member, team, known, policy):
                withheld = True
            else:
                participants.append(p)
        kept_teams.append({**team, "participant": participants})
    return Screened(kept_teams, kept_episodes, withheld)
