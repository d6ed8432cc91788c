"""Estimating the model's m and u values on the authority's own records
(``federator-adapter estimate``; pure functions over prepared records).

- ``u`` (how often two *different* children agree at each level) from random
  pairs of the records: in an authority's register two records drawn at
  random are almost always two children, so this is the reliable part.
- ``m`` (how often the *same* child's details agree at each level) by EM
  (expectation maximisation, Fellegi-Sunter's latent class model) over the
  pairs the blocking index finds within the records. Both classes are fitted
  (``m`` and the non-matching pairs' own distribution, which among *blocked*
  pairs is not ``u``: pairs found by a shared postcode agree on the postcode
  far more often than two random records do); only ``m`` and the share of
  matching pairs are kept. Holding the non-matching class at the random-pair
  ``u`` instead let EM take "the same postcode" for "the same child" (on
  FEBRL 4 it fitted m(postcode full) = 0.96 and m(given name exact) = 0.13).
  A register holds few duplicates of one child, so this is only worth running
  (``--em``) on records that do (say, two systems merged); by default ``m``
  keeps the documented defaults. The file says which.

Each estimate is smoothed towards the default (``SMOOTHING`` pseudo-pairs)
and kept inside (0, 1), so a level never seen does not get weight infinity.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Mapping
from typing import Any

from adapters.kit.candidates import Prepared, RecordIndex, block_keys
from adapters.kit.comparisons import compare_dob, compare_family, compare_given, compare_postcodes
from adapters.kit.model import FIELDS, LEVELS, MatchModel

SMOOTHING = 50.0
FLOOR = 1e-7


def levels_of(a: Prepared, b: Prepared) -> dict[str, str | None]:
    """The comparison level of each field for two prepared records."""
    return {
        "given_name": compare_given(a.given, b.given),
        "family_name": compare_family(a.family, b.family),
        "date_of_birth": compare_dob(a.dob, b.dob),
        "postcode": compare_postcodes(a.postcodes, b.postcodes[0] if b.postcodes else None),
    }


def _smoothed(counts: Mapping[str, float], seen: float, default: dict[str, float]
              ) -> dict[str, float]:
    values = {lv: max(FLOOR, (counts[lv] + SMOOTHING * default[lv]) / (seen + SMOOTHING))
              for lv in default}
    total = sum(values.values())
    return {lv: min(1 - FLOOR, v / total) for lv, v in values.items()}


def estimate_u(index: RecordIndex, model: MatchModel, *, pairs: int = 200_000,
               seed: int = 1) -> dict[str, dict[str, float]]:
    rng = random.Random(seed)  # noqa: S311 - sampling, not secrets
    n = len(index.prepared)
    counts = {f: Counter[str]() for f in FIELDS}
    seen = dict.fromkeys(FIELDS, 0)
    if n >= 2:
        for _ in range(pairs):
            i, j = rng.randrange(n), rng.randrange(n)
            if i == j:
                continue
            for f, level in levels_of(index.prepared[i], index.prepared[j]).items():
                if level is not None:
                    counts[f][level] += 1
                    seen[f] += 1
    return {f: _smoothed(counts[f], seen[f], dict(model.u[f])) for f in FIELDS}


def blocked_pairs(index: RecordIndex, *, limit: int = 500_000) -> list[tuple[int, int]]:
    """Pairs of records that share a blocking key (the pairs EM learns from)."""
    pairs: set[tuple[int, int]] = set()
    by_key: dict[int, list[int]] = {}
    for i, p in enumerate(index.prepared):
        for key in block_keys(p):
            by_key.setdefault(key, []).append(i)  # (index.blocks may hold a bare int)
    for members in by_key.values():
        if len(members) > 50:  # a crowded key (a common name's): its pairs say little
            continue
        for x in range(len(members)):
            for y in range(x + 1, len(members)):
                pairs.add((members[x], members[y]))
                if len(pairs) >= limit:
                    return sorted(pairs)
    return sorted(pairs)


def estimate_m(index: RecordIndex, model: MatchModel, u: dict[str, dict[str, float]], *,
               iterations: int = 50) -> tuple[dict[str, dict[str, float]], float, int]:
    """EM over the blocked pairs: (m, share of pairs that match, pairs)."""
    vectors = [levels_of(index.prepared[i], index.prepared[j])
               for i, j in blocked_pairs(index)]
    m, share = em_m(vectors, model, u, iterations=iterations)
    return m, share, len(vectors)


Vector = dict[str, str | None]


def em_m(vectors: list[Vector], model: MatchModel, u: dict[str, dict[str, float]], *,
         iterations: int = 50, share: float | None = None
         ) -> tuple[dict[str, dict[str, float]], float]:
    """EM for ``m`` and the share of pairs that match, over comparison vectors.

    Starts from the model's ``m``, ``u`` and ``share`` (default: one pair in
    ten); the non-matching class is fitted too (see the module docstring) and
    dropped."""
    return em_fields(vectors, {f: dict(model.m[f]) for f in FIELDS}, u, LEVELS,
                     iterations=iterations, share=share)


def em_fields(vectors: list[Vector], m0: Mapping[str, Mapping[str, float]],
              u0: Mapping[str, Mapping[str, float]], levels: Mapping[str, tuple[str, ...]], *,
              iterations: int = 50, share: float | None = None
              ) -> tuple[dict[str, dict[str, float]], float]:
    """:func:`em_m` over any fields (``levels``: each field's levels; ``m0`` and
    ``u0`` the start, ``m0`` also what estimates are smoothed towards).
    Identical vectors are counted once with their number."""
    fields = tuple(levels)
    counted = Counter(tuple(v.get(f) for f in fields) for v in vectors)
    m = {f: dict(m0[f]) for f in fields}
    n = {f: dict(u0[f]) for f in fields}  # the non-matching blocked pairs
    share = 0.1 if share is None else share
    total_pairs = sum(counted.values())
    for _ in range(iterations):
        m_counts = {f: dict.fromkeys(levels[f], 0.0) for f in fields}
        n_counts = {f: dict.fromkeys(levels[f], 0.0) for f in fields}
        m_seen, n_seen = dict.fromkeys(fields, 0.0), dict.fromkeys(fields, 0.0)
        matched = 0.0
        for vector, times in counted.items():
            bits = math.log2(share / (1 - share)) + sum(
                math.log2(m[f][lv] / n[f][lv]) for f, lv in zip(fields, vector, strict=True)
                if lv is not None)
            p = 1.0 / (1.0 + 2.0 ** -max(-60.0, min(60.0, bits)))
            matched += p * times
            for f, lv in zip(fields, vector, strict=True):
                if lv is not None:
                    m_counts[f][lv] += p * times
                    m_seen[f] += p * times
                    n_counts[f][lv] += (1 - p) * times
                    n_seen[f] += (1 - p) * times
        share = min(0.5, max(1e-6, matched / max(1, total_pairs)))
        m = {f: _smoothed(m_counts[f], m_seen[f], dict(m0[f])) for f in fields}
        n = {f: _smoothed(n_counts[f], n_seen[f], dict(u0[f])) for f in fields}
    return m, share


#: EM's m is kept only if the same child agrees exactly on each field at least
#: this often (``LEVELS[f][0]``); on records without duplicates EM fits some
#: other group of pairs (same-name pairs of a register: m(date of birth
#: exact) = 0.12), which would weigh agreement as if it said little.
PLAUSIBLE_M_EXACT = 0.5
#: ... and only if it took at least this many pairs for one child's (a few
#: twins are not duplicates to learn from).
MIN_MATCHED_PAIRS = 100


def implausible(m: Mapping[str, Mapping[str, float]], matched_pairs: float) -> str | None:
    """Why an EM fit of m is not the same child's, or None."""
    if matched_pairs < MIN_MATCHED_PAIRS:
        return f"{matched_pairs:.0f} pairs estimated to match, fewer than {MIN_MATCHED_PAIRS}"
    for f in FIELDS:
        top = LEVELS[f][0]
        if m[f][top] < PLAUSIBLE_M_EXACT:
            return f"m({f} {top}) = {m[f][top]:.2f}"
    return None


def estimate(index: RecordIndex, model: MatchModel, *, em: bool = False,
             pairs: int = 200_000, seed: int = 1) -> dict[str, Any]:
    """The m/u file's content (``match_model_path``)."""
    u = estimate_u(index, model, pairs=pairs, seed=seed)
    info: dict[str, Any] = {"records": index.size, "u": f"{pairs} random pairs of records"}
    m = {f: dict(model.m[f]) for f in FIELDS}
    info["m"] = "documented defaults"
    if em:
        fitted, share, n = estimate_m(index, model, u)
        weak = implausible(fitted, share * n)
        if weak is None:
            m = fitted
            info["m"] = f"EM over {n} blocked pairs ({share:.4f} estimated to match)"
        else:
            info["m"] = (f"documented defaults: EM over {n} blocked pairs found no duplicates "
                         f"to learn from ({weak})")
    return {"m": m, "u": u, "swap_probability": model.swap_probability,
            "present_prior": model.present_prior, "estimated": info}
