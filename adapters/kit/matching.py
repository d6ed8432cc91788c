"""Find the child a request is about among the authority's records (pure functions).

An NHS number that matches exactly wins with confidence 1.0. Otherwise a
demographic score in 0..1 is built from the name, the date of birth and the
postcode; see :func:`demographic_score`. The result is:

- ``match`` when the best score reaches ``match_threshold`` (and no other
  record comes within :data:`AMBIGUITY_MARGIN` of it: two equally good
  candidates are not a match);
- ``no_match`` with a :data:`POSSIBLE_MATCH_NOTICE` when the best score is
  between ``possible_threshold`` and ``match_threshold``: the requester is
  asked to contact the authority, and no professionals are given;
- ``no_match`` otherwise.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from adapters.kit.sources import ChildRecord

NAME_WEIGHT = 0.45
DOB_WEIGHT = 0.35
POSTCODE_WEIGHT = 0.20
# Without a postcode to compare, a perfect name and date of birth score this much.
NO_POSTCODE_CEILING = 0.9
TRANSPOSED_DOB_SCORE = 0.75
SAME_DISTRICT_SCORE = 0.5
SWAPPED_NAMES_FACTOR = 0.9
# Below this a name is not a typo of the other: it counts for much less.
NAME_TYPO_FLOOR = 0.8
NAME_MISMATCH_FACTOR = 0.5
# Two candidates closer than this are ambiguous (twins, for one): no match.
AMBIGUITY_MARGIN = 0.02

#: ``moved_house`` (kit setting): what names and date of birth that agree exactly,
#: with a postcode that does not, give. See :func:`moved_house_record`.
MOVED_HOUSE_POSSIBLE = "possible_match"
MOVED_HOUSE_MATCH = "match_if_unique"
MOVED_HOUSE_MODES = (MOVED_HOUSE_POSSIBLE, MOVED_HOUSE_MATCH)
MOVED_HOUSE_NOTICE = (
    "Matched on name and date of birth only: the postcode we hold for this child is not "
    "one of those given, so the child may have moved. Please check the child's identity "
    "with the professionals listed."
)

POSSIBLE_MATCH_NOTICE = (
    "A possible match was found but it is not certain enough to share details. "
    "Please contact {authority} to confirm the child's identity."
)


@dataclass(frozen=True)
class MatchResult:
    status: str  # "match" or "no_match"
    confidence: float
    record: ChildRecord | None = None
    notice: str | None = None
    method: str | None = None  # "nhs_number", "demographics", "demographics_moved" or None


# --------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------


def normalise_nhs_number(value: str | None) -> str | None:
    if not value:
        return None
    digits = re.sub(r"[\s\-]", "", value)
    return digits or None


def normalise_name(value: str | None) -> str:
    """Case, accents, spaces and punctuation do not count: "Zoë O'Neil" == "zoe oneil"."""
    if not value:
        return ""
    decomposed = unicodedata.normalize("NFKD", value)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return "".join(c for c in plain.casefold() if c.isalnum())


def normalise_postcode(value: str | None) -> str:
    if not value:
        return ""
    return re.sub(r"[^A-Z0-9]", "", value.upper())


def outward_code(postcode: str) -> str:
    """The district part of a normalised postcode ("LS62AB" → "LS6")."""
    return postcode[:-3] if len(postcode) > 3 else postcode


def parse_date(value: str | date | None) -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        return None


# --------------------------------------------------------------------------
# Component scores
# --------------------------------------------------------------------------


def name_similarity(a: str | None, b: str | None) -> float:
    x, y = normalise_name(a), normalise_name(b)
    if not x or not y:
        return 0.0
    if x == y:
        return 1.0
    return difflib.SequenceMatcher(None, x, y, autojunk=False).ratio()


def _typo_tolerant(similarity: float) -> float:
    """A near miss (a typo) keeps its similarity; a different name counts for much less."""
    return similarity if similarity >= NAME_TYPO_FLOOR else similarity * NAME_MISMATCH_FACTOR


def name_score(given: str | None, family: str | None, record: ChildRecord) -> float:
    """Both names must agree (a product); swapped given and family names score a bit less."""
    straight = _typo_tolerant(name_similarity(given, record.given_name)) * _typo_tolerant(
        name_similarity(family, record.family_name)
    )
    swapped = _typo_tolerant(name_similarity(given, record.family_name)) * _typo_tolerant(
        name_similarity(family, record.given_name)
    )
    return max(straight, swapped * SWAPPED_NAMES_FACTOR)


def dob_score(asked: date | None, known: date | None) -> float:
    if asked is None or known is None:
        return 0.0
    if asked == known:
        return 1.0
    if (asked.year == known.year and asked.day == known.month
            and asked.month == known.day):
        return TRANSPOSED_DOB_SCORE
    return 0.0


def postcode_score(asked: Iterable[str], known: str | None) -> float | None:
    """1.0 for the same postcode, less for the same district; None when nothing to compare."""
    k = normalise_postcode(known)
    wanted = [p for p in (normalise_postcode(a) for a in asked) if p]
    if not k or not wanted:
        return None
    if k in wanted:
        return 1.0
    if outward_code(k) in {outward_code(p) for p in wanted}:
        return SAME_DISTRICT_SCORE
    return 0.0


def demographic_score(child: Mapping[str, Any], record: ChildRecord) -> float:
    if not (child.get("given_name") or child.get("family_name")):
        return 0.0
    names = name_score(child.get("given_name"), child.get("family_name"), record)
    dob = dob_score(parse_date(child.get("date_of_birth")), record.date_of_birth)
    postcode = postcode_score(child.get("postcodes") or [], record.postcode)
    if postcode is None:
        partial = (NAME_WEIGHT * names + DOB_WEIGHT * dob) / (NAME_WEIGHT + DOB_WEIGHT)
        score = partial * NO_POSTCODE_CEILING
    else:
        score = NAME_WEIGHT * names + DOB_WEIGHT * dob + POSTCODE_WEIGHT * postcode
    return max(0.0, min(1.0, score))


# --------------------------------------------------------------------------
# Matching
# --------------------------------------------------------------------------


def match_child(
    child: Mapping[str, Any],
    records: Sequence[ChildRecord],
    *,
    match_threshold: float = 0.85,
    possible_threshold: float = 0.6,
    authority: str = "the authority",
    moved_house: str = MOVED_HOUSE_POSSIBLE,
    narrow: bool = True,
) -> MatchResult:
    """Match a wire ``child`` (as loaded by ``WireChild``) against the records.

    With ``narrow`` (the default) and records that carry an index (a source's
    ``sources.Records``), only the records that can reach ``possible_threshold``
    are scored (:mod:`adapters.kit.candidates`); the result is the full scan's.
    ``moved_house``: see :func:`moved_house_record`."""
    index = getattr(records, "match_index", None) if narrow else None
    nhs = normalise_nhs_number(child.get("nhs_number"))
    if nhs:
        if index is not None:
            found = index.by_nhs.get(nhs)
            if found is not None:
                return MatchResult("match", 1.0, records[found], method="nhs_number")
        else:
            for record in records:
                if normalise_nhs_number(record.nhs_number) == nhs:
                    return MatchResult("match", 1.0, record, method="nhs_number")

    positions: Iterable[int] = range(len(records))
    if index is not None:
        narrowed = _candidates.candidates(index, child, possible_threshold)
        if narrowed is not None:  # None: a threshold too low to narrow safely
            positions = narrowed
    scored = sorted(((demographic_score(child, records[i]), i) for i in positions),
                    reverse=True)
    if not scored or scored[0][0] < possible_threshold:
        return MatchResult("no_match", 0.0)
    best, index_of_best = scored[0]
    confidence = round(best, 3)
    ambiguous = (len(scored) > 1 and scored[1][0] >= match_threshold
                 and best - scored[1][0] < AMBIGUITY_MARGIN)
    if best >= match_threshold and not ambiguous:
        return MatchResult("match", confidence, records[index_of_best], method="demographics")
    # Moved house: the best record, and the only one worth a notice, agrees exactly
    # on names and date of birth and is the only record that does.
    runner_up = scored[1][0] if len(scored) > 1 else 0.0
    if (moved_house == MOVED_HOUSE_MATCH and best < match_threshold
            and runner_up < possible_threshold
            and moved_house_record(child, [records[i] for _, i in scored])
            is records[index_of_best]):
        return MatchResult("match", confidence, records[index_of_best],
                           notice=MOVED_HOUSE_NOTICE, method="demographics_moved")
    return MatchResult(
        "no_match", confidence, None,
        notice=POSSIBLE_MATCH_NOTICE.format(authority=authority),
        method="demographics",
    )


def moved_house_record(child: Mapping[str, Any], records: Iterable[ChildRecord]
                       ) -> ChildRecord | None:
    """The one record that may be this child who moved house, or None.

    It must have the same given and family names (after normalisation, in
    order) and exactly the same date of birth, the requester must have given
    postcodes (none of them the record's), and no other record may share the
    names and date of birth (twins, or two children of the same name born the
    same day). An NHS number on both sides that differs rules it out."""
    given, family = normalise_name(child.get("given_name")), normalise_name(
        child.get("family_name"))
    born = parse_date(child.get("date_of_birth"))
    asked = {normalise_postcode(p) for p in child.get("postcodes") or []} - {""}
    if not (given and family and born and asked):
        return None
    same = [r for r in records if r.date_of_birth == born
            and normalise_name(r.given_name) == given and normalise_name(r.family_name) == family]
    if len(same) != 1:
        return None
    record = same[0]
    if normalise_postcode(record.postcode) in asked:
        return None
    nhs, theirs = normalise_nhs_number(child.get("nhs_number")), normalise_nhs_number(
        record.nhs_number)
    if nhs and theirs and nhs != theirs:
        return None
    return record


from adapters.kit import candidates as _candidates  # noqa: E402 - it imports this module
