"""Finding the child at a FHIR R4 endpoint the way FHIR servers do, judged by the
kit's own matching (pure functions over parsed FHIR JSON; no network).

- By NHS number: ``Patient?identifier=…``; a Patient is kept only when it carries
  that NHS number (a server answering with another child is not believed).
- Demographics, when the CapabilityStatement offers ``Patient/$match`` (IHE
  PDQm): the server's candidates with their ``match-grade`` extension and
  ``search.score``, each also scored by the kit (:mod:`adapters.kit.matching`):

  ============== ==================================================================
  grade           outcome
  ============== ==================================================================
  certain         a match, unless the kit's rules veto it (two different valid NHS
                  numbers: dropped; a sibling, or a score below possible: at most
                  possible)
  probable        a match only when the kit's own score is a match too; else possible
  possible        possible (``no_match`` with the possible-match notice), never a match
  certainly-not   dropped
  ============== ==================================================================

  Two candidates that would both be a match are not one: possible.
- Demographics otherwise: ``Patient?family=…&birthdate=…`` and
  ``Patient?given=…&birthdate=…``, every Patient found scored by
  :func:`adapters.kit.matching.match_child` (a hyphenated or changed family name,
  a nickname: the kit's comparisons judge them, not an exact check).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from adapters.kit.candidates import build_index, prepare_request
from adapters.kit.matching import (
    DEFAULT_MATCH_THRESHOLD,
    DEFAULT_POSSIBLE_THRESHOLD,
    POSSIBLE_MATCH_NOTICE,
    ask_for,
    match_child,
    score_candidates,
)
from adapters.kit.normalise import normalise_nhs_number, parse_date
from adapters.kit.sources import ChildRecord

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
MATCH_GRADE = "http://hl7.org/fhir/StructureDefinition/match-grade"
GRADES = ("certain", "probable", "possible", "certainly-not")
MATCH_COUNT = 10
#: At most this many of a $match answer's Patients are judged (it was asked for
#: MATCH_COUNT; a server sending thousands does not buy the broker's time).
MAX_CANDIDATES = 50


@dataclass(frozen=True)
class Found:
    """How the child was found: ``match`` (``patient``), ``possible`` (``patient``
    is the candidate, never shared) or ``none``."""

    status: str
    patient: dict[str, Any] | None = None
    confidence: float = 0.0
    matched_on: tuple[str, ...] = ()
    ask_for: tuple[str, ...] = ()
    notice: str | None = None


NOT_FOUND = Found("none")


# --------------------------------------------------------------------------
# Patients as the kit's records
# --------------------------------------------------------------------------


def nhs_numbers(patient: Mapping[str, Any]) -> set[str]:
    return {n for i in patient.get("identifier") or [] if isinstance(i, dict)
            and i.get("system") == NHS_NUMBER_SYSTEM
            and (n := normalise_nhs_number(str(i.get("value") or "")))}


def _official_name(patient: Mapping[str, Any]) -> Mapping[str, Any]:
    names = [n for n in patient.get("name") or [] if isinstance(n, dict)]
    for name in names:
        if name.get("use") == "official":
            return name
    current = [n for n in names if n.get("use") not in ("old", "anonymous")]
    return (current or names or [{}])[0]


def record_of(patient: Mapping[str, Any], position: int) -> ChildRecord:
    """A Patient as a kit record (``child_ref`` is its position among the candidates)."""
    name = _official_name(patient)
    given = [g for g in name.get("given") or [] if isinstance(g, str)]
    postcodes = [a.get("postalCode") for a in patient.get("address") or []
                 if isinstance(a, dict) and isinstance(a.get("postalCode"), str)
                 and not (a.get("period") or {}).get("end")]
    numbers = sorted(nhs_numbers(patient))
    born = patient.get("birthDate")
    dob: date | None = parse_date(born) if isinstance(born, str) else None
    return ChildRecord(child_ref=str(position), nhs_number=numbers[0] if numbers else None,
                       given_name=" ".join(given), family_name=str(name.get("family") or ""),
                       date_of_birth=dob, postcode=postcodes[0] if postcodes else None)


def _unique(patients: Iterable[Any]) -> list[dict[str, Any]]:
    """Each Patient once; a merged record (``active: false``, ``link`` of type
    ``replaced-by``) left out when the record that replaced it is here too (one
    child, not two candidates that make each other ambiguous)."""
    seen: set[str] = set()
    out = []
    for p in patients:
        if isinstance(p, dict) and p.get("resourceType") == "Patient" and p.get("id") \
                and str(p["id"]) not in seen:
            seen.add(str(p["id"]))
            out.append(p)
    return [p for p in out if not _replaced(p, seen)]


def _replaced(patient: Mapping[str, Any], ids: set[str]) -> bool:
    if patient.get("active") is not False:
        return False
    for link in patient.get("link") or []:
        other = link.get("other") if isinstance(link, dict) else None
        target = other.get("reference") if isinstance(other, dict) else None
        if link.get("type") == "replaced-by" and isinstance(target, str) \
                and target.rstrip("/").split("/")[-1] in ids - {str(patient["id"])}:
            return True
    return False


# --------------------------------------------------------------------------
# By NHS number
# --------------------------------------------------------------------------


def by_nhs_number(nhs: str, patients: Iterable[Any]) -> list[dict[str, Any]]:
    """The Patients an identifier search returned that carry that NHS number."""
    return [p for p in _unique(patients) if nhs in nhs_numbers(p)]


# --------------------------------------------------------------------------
# Demographic search, scored by the kit
# --------------------------------------------------------------------------


def demographic_searches(child: Mapping[str, Any]) -> list[list[tuple[str, str]]]:
    """The Patient searches for a request without an NHS number match."""
    given, family = child.get("given_name"), child.get("family_name")
    born = child.get("date_of_birth")
    if born:
        return [[(name, value), ("birthdate", born)] for name, value in
                (("family", family), ("given", given)) if value]
    if given and family:
        return [[("family", family), ("given", given)]]
    return []


def judge_search(child: Mapping[str, Any], patients: Iterable[Any], *,
                 authority: str) -> Found:
    """The kit's :func:`match_child` over the Patients found."""
    candidates = _unique(patients)
    if not candidates:
        return NOT_FOUND
    records = [record_of(p, i) for i, p in enumerate(candidates)]
    result = match_child(child, records, authority=authority)
    if result.status == "match" and result.record is not None:
        return Found("match", candidates[int(result.record.child_ref)],
                     result.confidence, result.matched_on)
    if result.candidate is not None and result.notice:
        return Found("possible", candidates[int(result.candidate.child_ref)],
                     result.confidence, result.matched_on, result.ask_for, result.notice)
    return NOT_FOUND


# --------------------------------------------------------------------------
# Patient/$match (IHE PDQm)
# --------------------------------------------------------------------------


def offers_match(capability: Any) -> bool:
    """Whether a CapabilityStatement offers ``Patient/$match``."""
    if not isinstance(capability, dict) or capability.get("resourceType") != \
            "CapabilityStatement":
        return False
    for rest in capability.get("rest") or []:
        if not isinstance(rest, dict) or rest.get("mode", "server") != "server":
            continue
        operations = list(rest.get("operation") or [])
        for resource in rest.get("resource") or []:
            if isinstance(resource, dict) and resource.get("type") == "Patient":
                operations.extend(resource.get("operation") or [])
        for op in operations:
            if isinstance(op, dict) and (
                    str(op.get("name", "")).lstrip("$") == "match"
                    or str(op.get("definition", "")).rstrip("/").endswith("Patient-match")):
                return True
    return False


def match_parameters(child: Mapping[str, Any], *, count: int = MATCH_COUNT) -> dict[str, Any]:
    """The ``Parameters`` a ``Patient/$match`` is asked with."""
    patient: dict[str, Any] = {"resourceType": "Patient"}
    nhs = normalise_nhs_number(str(child.get("nhs_number") or ""))
    if nhs:
        patient["identifier"] = [{"system": NHS_NUMBER_SYSTEM, "value": nhs}]
    name: dict[str, Any] = {}
    if child.get("family_name"):
        name["family"] = str(child["family_name"])
    if child.get("given_name"):
        name["given"] = [str(child["given_name"])]
    if name:
        patient["name"] = [name]
    if child.get("date_of_birth"):
        patient["birthDate"] = str(child["date_of_birth"])
    postcodes = [str(p) for p in child.get("postcodes") or [] if p]
    if postcodes:
        patient["address"] = [{"postalCode": p} for p in postcodes]
    return {"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": patient},
        {"name": "onlyCertainMatches", "valueBoolean": False},
        {"name": "count", "valueInteger": count}]}


@dataclass(frozen=True)
class Graded:
    patient: dict[str, Any]
    grade: str | None
    score: float | None


def graded(bundle: Mapping[str, Any]) -> list[Graded]:
    """A $match Bundle's Patients with their grade and score (anything unreadable:
    no grade, no score)."""
    out = []
    seen: set[str] = set()
    for entry in (bundle.get("entry") or [])[:MAX_CANDIDATES]:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or resource.get("resourceType") != "Patient" \
                or not resource.get("id") or str(resource["id"]) in seen:
            continue
        seen.add(str(resource["id"]))
        search = entry.get("search") if isinstance(entry.get("search"), dict) else {}
        if search.get("mode") not in (None, "match"):
            continue
        grade = None
        for ext in search.get("extension") or []:
            if isinstance(ext, dict) and ext.get("url") == MATCH_GRADE \
                    and ext.get("valueCode") in GRADES:
                grade = ext["valueCode"]
        score = search.get("score")
        ok = isinstance(score, int | float) and not isinstance(score, bool) \
            and 0.0 <= float(score) <= 1.0
        out.append(Graded(resource, grade, float(score) if ok else None))
    return out


def judge_match(child: Mapping[str, Any], candidates: Sequence[Graded], *,
                authority: str) -> Found:
    """The outcome of a ``$match`` answer (module docstring's table)."""
    kept = [c for c in candidates if c.grade != "certainly-not"]
    if not kept:
        return NOT_FOUND
    records = [record_of(c.patient, i) for i, c in enumerate(kept)]
    index = build_index(records)
    query = prepare_request(child)
    scored = {s.position: s for s in score_candidates(query, index, range(len(kept)))}
    matches: list[Found] = []
    possibles: list[tuple[float, Found]] = []
    for i, c in enumerate(kept):
        s = scored.get(i)
        if s is None:  # two different valid NHS numbers: two children
            continue
        agreed = s.comparison.agreed
        same_nhs = bool(query.nhs and query.nhs == index.prepared[i].nhs)
        if same_nhs and c.grade in ("certain", "probable", None):
            matches.append(Found("match", c.patient, 1.0, ("nhs_number", *agreed)))
            continue
        own_match = not s.capped and s.probability >= DEFAULT_MATCH_THRESHOLD
        if (c.grade == "certain" and not s.capped
                and s.probability >= DEFAULT_POSSIBLE_THRESHOLD) or (
                c.grade in ("probable", None) and own_match):
            confidence = c.score if c.score is not None else round(s.probability, 4)
            matches.append(Found("match", c.patient, confidence, agreed))
            continue
        if c.grade in ("certain", "probable", "possible", None):
            likely = c.score if c.score is not None else s.probability
            confidence = round(min(max(likely, DEFAULT_POSSIBLE_THRESHOLD),
                                   DEFAULT_MATCH_THRESHOLD - 0.001), 4)
            possibles.append((likely, Found(
                "possible", c.patient, confidence, agreed,
                ask_for(query, index.prepared[i], s.comparison),
                POSSIBLE_MATCH_NOTICE.format(authority=authority))))
    if len(matches) == 1:
        return matches[0]
    if matches:  # more than one record would be this child: not a match
        first = matches[0]
        return Found("possible", first.patient, round(min(
            first.confidence, DEFAULT_MATCH_THRESHOLD - 0.001), 4), first.matched_on, (),
            POSSIBLE_MATCH_NOTICE.format(authority=authority))
    if possibles:
        return max(possibles, key=lambda p: p[0])[1]
    return NOT_FOUND
