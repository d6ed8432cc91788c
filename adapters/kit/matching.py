"""Find the child a request is about among the authority's records (pure functions).

1. An NHS number that matches a record's exactly: ``match``, confidence 1.0.
2. Otherwise probabilistic record linkage (Fellegi-Sunter, ``model.py``) over
   the candidates the index finds (``candidates.py``), field by field
   (``comparisons.py``). Rules come before the score:

   - two valid NHS numbers (modulus 11) that differ are two children: that
     record is never a match, not even a possible one;
   - the same date of birth and family name with given names that are not
     the same, not variants of each other and not a typo of one another
     (the request's name is a known given name, or does not spell like the
     record's) is a sibling: at most ``possible``;
   - ``moved_house = "possible_match"``: a postcode given on both sides that
     agrees in nothing is at most ``possible``.

3. The best record's probability decides: ``match`` at ``match_threshold``
   or above, unless another record comes within :data:`AMBIGUITY_BITS` of its
   match weight (two close candidates are not a match: twins, for one, unless
   the sibling rule has told them apart), or a record the sibling rule capped
   outweighs it (the request is about that family); ``no_match`` with
   :data:`POSSIBLE_MATCH_NOTICE` from ``possible_threshold``; ``no_match``
   without a notice below.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from adapters.kit.candidates import Prepared, RecordIndex, build_index, candidates, prepare_request
from adapters.kit.comparisons import (
    compare_dob,
    compare_family,
    compare_given,
    compare_postcodes,
    edits,
    one_name_forms,
)
from adapters.kit.model import DEFAULT_MODEL, MatchModel, probability
from adapters.kit.normalise import (  # noqa: F401 - re-exported for the kit's callers
    normalise_name,
    normalise_nhs_number,
    normalise_postcode,
    parse_date,
    valid_nhs_number,
)
from adapters.kit.sources import ChildRecord

#: Another record this close in match weight (bits: 4 = 16 times less likely)
#: makes the best one ambiguous.
AMBIGUITY_BITS = 4.0
DEFAULT_MATCH_THRESHOLD = 0.99
DEFAULT_POSSIBLE_THRESHOLD = 0.2

#: ``moved_house`` (kit setting): what a postcode that agrees in nothing does.
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
#: The fields an answer's ``matched_on`` and ``ask_for`` name.
ANSWER_FIELDS = ("nhs_number", "given_name", "family_name", "date_of_birth", "postcode")


@dataclass(frozen=True)
class MatchResult:
    status: str  # "match" or "no_match"
    confidence: float
    record: ChildRecord | None = None
    notice: str | None = None
    method: str | None = None  # "nhs_number", "demographics", "demographics_moved" or None
    matched_on: tuple[str, ...] = ()  # on a match and on a possible
    ask_for: tuple[str, ...] = ()  # on a possible
    #: on a possible: the record it may be (never shared; the kit's policy reads it)
    candidate: ChildRecord | None = None


@dataclass(frozen=True)
class Comparison:
    """How a request and one record compare: the level per field (None:
    missing), whether the names were swapped over, and the match weight (bits)."""

    given: str | None
    family: str | None
    dob: str | None
    postcode: str | None
    swapped: bool
    bits: float
    agreed: tuple[str, ...]  # fields whose level weighs for the match


def compare(query: Prepared, record: Prepared, index: RecordIndex,
            model: MatchModel = DEFAULT_MODEL) -> Comparison:
    """The comparison of one request with one record (symmetric in the request's
    postcode order)."""
    dob = compare_dob(query.dob, record.dob)
    postcode = compare_postcodes(query.postcodes, record.postcodes[0]
                                 if record.postcodes else None)
    g, f = compare_given(query.given, record.given), compare_family(query.family, record.family)
    g_bits = _name_bits("given_name", g, record.given, index, model)
    f_bits = _name_bits("family_name", f, record.family, index, model)
    swapped = False
    if query.given and query.family and record.given and record.family and (
            g_bits + f_bits < 0):  # straight, the names disagree: were they swapped?
        # The request's given name against the record's family name and the other
        # way round; weighed as either field (the mean), so that the comparison is
        # the same from either side, without term frequencies.
        s1 = compare_family(query.given, record.family)
        s2 = compare_family(query.family, record.given)
        s1_bits, s2_bits = (
            (model.weight("given_name", lv) + model.weight("family_name", lv)) / 2
            for lv in (s1, s2))
        if s1_bits + s2_bits + model.swap_bits > g_bits + f_bits:
            g, f, swapped = s2, s1, True
            g_bits, f_bits = s2_bits, s1_bits + model.swap_bits
    d_bits = model.weight("date_of_birth", dob)
    p_bits = model.weight("postcode", postcode)
    if postcode == "full":  # the record's postcode, weighed by how many records share it
        p_bits = model.exact_weight("postcode", "full",
                                    index.postcode_counts[record.postcodes[0].full], index.size)
    agreed = tuple(name for name, bits, level in (
        ("given_name", g_bits, g), ("family_name", f_bits, f),
        ("date_of_birth", d_bits, dob), ("postcode", p_bits, postcode))
        if level is not None and bits > 0)
    return Comparison(g, f, dob, postcode, swapped, g_bits + f_bits + d_bits + p_bits, agreed)


def _name_bits(field_name: str, level: str | None, known: Any, index: RecordIndex,
               model: MatchModel) -> float:
    if level == "exact" and known is not None:
        counts = index.given_counts if field_name == "given_name" else index.family_counts
        return model.exact_weight(field_name, "exact", counts[known.full], index.size)
    return model.weight(field_name, level)


# --------------------------------------------------------------------------
# Rules before the score
# --------------------------------------------------------------------------


def different_nhs_numbers(query: Prepared, record: Prepared) -> bool:
    """Two valid NHS numbers that differ: two different children."""
    return bool(query.nhs and record.nhs and query.nhs != record.nhs
                and valid_nhs_number(query.nhs) and valid_nhs_number(record.nhs))


#: How close a given name that nobody here has must be to the record's to be
#: read as a typo of it (``comparisons.py``: one edit or Jaro-Winkler >= 0.92,
#: sounds the same, Jaro-Winkler >= 0.80): "Isablel", "Tazta" for Tara.
TYPO_LEVELS = ("close", "phonetic", "fuzzy")


def is_sibling(query: Prepared, record: Prepared, index: RecordIndex) -> bool:
    """Same date of birth, same family name, another given name: a sibling
    (a twin, say), not a typo. A typo is a name that is not a known given name
    (shipped table, or on a record here) and spells like the record's
    (:data:`TYPO_LEVELS`, or one edit). A known name is a sibling's, however
    close ("Molly" for Holly); so is an unknown one that is nothing like it."""
    if query.given is None or record.given is None or query.dob is None:
        return False
    if query.dob != record.dob or query.family is None or record.family is None:
        return False
    if query.family.full != record.family.full:
        return False
    level = compare_given(query.given, record.given)
    if level in ("exact", "part", "initial") or (
            level == "variant" and one_name_forms(query.given, record.given)):
        return False
    typo = not index.is_known_given(query.given.full) and (
        level in TYPO_LEVELS or edits(query.given.full, record.given.full) <= 1)
    return not typo


# --------------------------------------------------------------------------
# Matching
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scored:
    probability: float
    capped: bool  # by a rule: at most possible
    position: int
    comparison: Comparison
    sibling: bool = False


def index_of(records: Sequence[ChildRecord]) -> RecordIndex:
    """The records' own index (``sources.Records``), or one built now (a plain list)."""
    index = getattr(records, "match_index", None)
    return index if isinstance(index, RecordIndex) else build_index(records)


def match_child(
    child: Mapping[str, Any],
    records: Sequence[ChildRecord],
    *,
    match_threshold: float = DEFAULT_MATCH_THRESHOLD,
    possible_threshold: float = DEFAULT_POSSIBLE_THRESHOLD,
    authority: str = "the authority",
    moved_house: str = MOVED_HOUSE_MATCH,
    narrow: bool = True,
    model: MatchModel = DEFAULT_MODEL,
) -> MatchResult:
    """Match a wire ``child`` (as loaded by ``WireChild``) against the records.

    ``narrow`` (the default): score only the candidates the index finds;
    ``narrow=False`` scores every record (the benchmark's check of the index)."""
    index = index_of(records)
    query = prepare_request(child)
    if query.nhs and (found := index.by_nhs.get(query.nhs)) is not None:
        return MatchResult("match", 1.0, records[found], method="nhs_number",
                           matched_on=("nhs_number",))
    if query.given is None and query.family is None:
        return MatchResult("no_match", 0.0)
    scored = score_candidates(query, index, range(index.size) if not narrow
                              else candidates(index, query),
                              model=model, moved_house=moved_house)
    if not scored:
        return MatchResult("no_match", 0.0)
    scored.sort(key=lambda s: (not s.capped and s.probability >= match_threshold,
                               s.probability, s.comparison.bits), reverse=True)
    best = scored[0]
    if best.probability < possible_threshold:
        return MatchResult("no_match", 0.0)
    ambiguous = any(not s.capped and s.probability >= possible_threshold
                    and best.comparison.bits - s.comparison.bits < AMBIGUITY_BITS
                    for s in scored[1:])
    # A sibling of the request that agrees more than the best record does: the
    # request is about that family (a given name replaced, or a sibling not on
    # file), not about a look-alike elsewhere.
    ambiguous = ambiguous or any(s.sibling and s.comparison.bits > best.comparison.bits
                                 for s in scored[1:])
    c = best.comparison
    if not best.capped and best.probability >= match_threshold and not ambiguous:
        moved = c.postcode == "other"
        return MatchResult("match", round(best.probability, 4), records[best.position],
                           notice=MOVED_HOUSE_NOTICE if moved else None,
                           method="demographics_moved" if moved else "demographics",
                           matched_on=c.agreed)
    confidence = min(best.probability, match_threshold - 0.001)
    return MatchResult(
        "no_match", round(max(confidence, possible_threshold), 4), None,
        notice=POSSIBLE_MATCH_NOTICE.format(authority=authority),
        method="demographics", matched_on=c.agreed,
        ask_for=ask_for(query, index.prepared[best.position], c),
        candidate=records[best.position])


def score_candidates(query: Prepared, index: RecordIndex, positions: Any, *,
                     model: MatchModel = DEFAULT_MODEL,
                     moved_house: str = MOVED_HOUSE_MATCH) -> list[_Scored]:
    prior = model.prior_bits(index.size)
    scored = []
    for i in positions:
        record = index.prepared[i]
        if different_nhs_numbers(query, record):
            continue
        c = compare(query, record, index, model)
        sibling = is_sibling(query, record, index)
        if sibling:  # another given name: it did not agree, whatever its similarity
            c = replace(c, agreed=tuple(f for f in c.agreed if f != "given_name"))
        capped = sibling or (moved_house == MOVED_HOUSE_POSSIBLE and c.postcode == "other")
        scored.append(_Scored(probability(c.bits + prior), capped, i, c, sibling))
    return scored


def ask_for(query: Prepared, record: Prepared, c: Comparison) -> tuple[str, ...]:
    """The details that would settle a possible match: those the request left
    out, and those that disagree; only what the record holds (asking for a
    postcode the authority does not have would settle nothing)."""
    held = {"nhs_number": record.nhs is not None and query.nhs is None,
            "given_name": record.given is not None, "family_name": record.family is not None,
            "date_of_birth": record.dob is not None, "postcode": bool(record.postcodes)}
    return tuple(name for name in ANSWER_FIELDS if held[name] and name not in c.agreed)
