"""FHIR R4 (UK Core) resources mapped to ``federator-lookup/1`` professionals.

Pure functions over parsed JSON: no network, no Flask.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import date
from typing import Any


def _norm(value: Any) -> str:
    return "".join(ch for ch in str(value or "").casefold() if ch.isalnum())


def demographics_agree(patient: Mapping[str, Any], given: str, family: str, born: str) -> bool:
    if patient.get("birthDate") != born:
        return False
    for name in patient.get("name") or []:
        if _norm(name.get("family")) == _norm(family) and any(
                _norm(g) == _norm(given) for g in name.get("given") or []):
            return True
    return False


def ref(value: Any) -> str | None:
    """The key of a Reference (``Type/id``, or ``Type/id#contained`` for a contained
    resource) once :func:`adapters.fhir_refs.normalise` has rewritten it."""
    if not isinstance(value, dict) or not isinstance(value.get("reference"), str):
        return None
    return value["reference"] or None


def references(teams: list[dict[str, Any]], episodes: list[dict[str, Any]],
                known: Mapping[str, Any]) -> Iterator[str]:
    for team in teams:
        if r := ref(team.get("managingOrganization", [None])[0]
                     if team.get("managingOrganization") else None):
            yield r
        for p in team.get("participant") or []:
            yield from filter(None, (ref(p.get("member")), ref(p.get("onBehalfOf"))))
    for episode in episodes:
        yield from filter(None, (ref(episode.get("careManager")),
                                 ref(episode.get("managingOrganization"))))
    for key, resource in list(known.items()):
        if key.startswith("PractitionerRole/"):
            yield from filter(None, (ref(resource.get("practitioner")),
                                     ref(resource.get("organization"))))


def _text(concepts: Any) -> str:
    if isinstance(concepts, dict):
        concepts = [concepts]
    for concept in concepts or []:
        if not isinstance(concept, dict):
            continue
        if concept.get("text"):
            return str(concept["text"])
        for coding in concept.get("coding") or []:
            if coding.get("display"):
                return str(coding["display"])
    return ""


def _human_name(practitioner: Mapping[str, Any]) -> str:
    for name in practitioner.get("name") or []:
        if name.get("text"):
            return str(name["text"])
        parts = [*(name.get("given") or []), name.get("family") or ""]
        text = " ".join(p for p in parts if p).strip()
        if text:
            return text
    return ""


def _telecom(*resources: Mapping[str, Any] | None) -> tuple[str | None, str | None]:
    phone = email = None
    for resource in resources:
        for point in (resource or {}).get("telecom") or []:
            if point.get("period", {}).get("end"):
                continue
            if point.get("system") == "phone" and not phone:
                phone = point.get("value")
            elif point.get("system") == "email" and not email:
                email = point.get("value")
    return phone, email


def _day(value: Any) -> str | None:
    """A FHIR date or dateTime as the protocol's ISO date (its day); a partial date
    (a year, a month) as none."""
    text = str(value or "")
    return text[:10] if re.match(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text) else None


def _current(status: str | None, period: Mapping[str, Any] | None, today: date) -> bool:
    if status in {"inactive", "finished", "cancelled", "entered-in-error"}:
        return False
    end = (period or {}).get("end")
    return not end or str(end)[:10] >= today.isoformat()


def _person(member: str | None, known: Mapping[str, dict[str, Any]], *, role: str,
            service: str, organisation_ref: str | None, team: str | None,
            period: Mapping[str, Any] | None, current: bool) -> dict[str, Any] | None:
    resource = known.get(member or "") or {}
    practitioner_role: dict[str, Any] | None = None
    if resource.get("resourceType") == "PractitionerRole":
        practitioner_role = resource
        resource = known.get(ref(resource.get("practitioner")) or "") or {}
        organisation_ref = ref(practitioner_role.get("organization")) or organisation_ref
        role = role or _text(practitioner_role.get("code"))
        service = service or _text(practitioner_role.get("specialty"))
    if resource.get("resourceType") != "Practitioner":
        return None
    organisation = known.get(organisation_ref or "") or {}
    phone, email = _telecom(practitioner_role, resource, organisation)
    identifiers = [i.get("value") for i in resource.get("identifier") or [] if i.get("value")]
    return {
        "name": _human_name(resource), "role": role, "service": service,
        "organisation": str(organisation.get("name") or ""), "team": team,
        "phone": phone, "email": email,
        "registration_number": identifiers[0] if identifiers else None,
        "current": current, "from": _day((period or {}).get("start")),
        "to": _day((period or {}).get("end")),
    }


def professionals_from(teams: list[dict[str, Any]], episodes: list[dict[str, Any]],
                       known: Mapping[str, dict[str, Any]], *, today: date
                       ) -> Iterator[dict[str, Any]]:
    """CareTeam participants and EpisodeOfCare care managers as professionals."""
    for team in teams:
        managing = team.get("managingOrganization") or []
        org = ref(managing[0]) if managing else None
        team_current = _current(team.get("status"), team.get("period"), today)
        for p in team.get("participant") or []:
            period = p.get("period") or team.get("period")
            person = _person(ref(p.get("member")), known, role=_text(p.get("role")),
                             service=_text(team.get("category")),
                             organisation_ref=ref(p.get("onBehalfOf")) or org,
                             team=team.get("name"), period=period,
                             current=team_current and _current(None, period, today))
            if person:
                yield person
    for episode in episodes:
        person = _person(ref(episode.get("careManager")), known, role="Care manager",
                         service=_text(episode.get("type")),
                         organisation_ref=ref(episode.get("managingOrganization")),
                         team=None, period=episode.get("period"),
                         current=_current(episode.get("status"), episode.get("period"), today))
        if person:
            yield person
