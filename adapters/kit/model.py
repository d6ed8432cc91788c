"""The Fellegi-Sunter model of the kit's matching: for each field and
comparison level (``comparisons.py``), ``m`` = P(level | same child) and
``u`` = P(level | two different children). A level's weight is
``log2(m / u)`` bits; a missing field weighs 0. The weights of a record add
up to its match weight ``w``, and

    P(this record is the child) = 1 / (1 + 2 ** -(w + log2(prior odds)))

with the prior ``present_prior / max(records, PRIOR_FLOOR_RECORDS)``: the
chance that the child asked about is known here at all (``present_prior``),
spread over the records. The broker asks an authority about a child whose
postcode is in its area (or a national one); whether the child is on this
authority's records is the open question, so the default is even odds (0.5).
It was 0.05, which no measurement supported: it took 4.3 bits off every
score and, with the thresholds, made the kit under-confident (on FEBRL 4,
where every lookup has its record, 95% of the answers it gave a probability
of 0.1-0.5 were right). An authority that knows its share (say, the share of
its lookups with an NHS number that found a record) sets it in the m/u file.

Term frequency: an exact agreement of a given or family name, and a full
postcode, use ``u = (count + K * u_exact) / (records + K)`` (``K`` =
:data:`TF_PSEUDO_RECORDS`) instead of ``u_exact``: a name (or postcode) that
many records carry weighs little, a rare one much (the counts are the
authority's own records).

The defaults (:data:`DEFAULT_M`, :data:`DEFAULT_U`) are documented in
adapters/kit/README.md; a kit may point ``match_model_path`` at a JSON file
(``federator-adapter estimate``) that replaces some or all of them.
Pure: no kit imports (settings.py validates a model file with it).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FIELDS = ("given_name", "family_name", "date_of_birth", "postcode")
LEVELS: dict[str, tuple[str, ...]] = {
    "given_name": ("exact", "variant", "part", "close", "phonetic", "fuzzy", "initial", "other"),
    "family_name": ("exact", "part", "close", "phonetic", "fuzzy", "initial", "other"),
    "date_of_birth": ("exact", "transposed", "year_off", "one_digit", "digits_swapped",
                      "other"),
    "postcode": ("full", "sector", "district", "near", "other"),
}

DEFAULT_M: dict[str, dict[str, float]] = {
    "given_name": {"exact": 0.86, "variant": 0.04, "part": 0.01, "close": 0.04,
                   "phonetic": 0.01, "fuzzy": 0.01, "initial": 0.01, "other": 0.02},
    "family_name": {"exact": 0.88, "part": 0.02, "close": 0.05, "phonetic": 0.01,
                    "fuzzy": 0.01, "initial": 0.005, "other": 0.025},
    "date_of_birth": {"exact": 0.92, "transposed": 0.015, "year_off": 0.01,
                      "one_digit": 0.035, "digits_swapped": 0.01, "other": 0.01},
    "postcode": {"full": 0.80, "sector": 0.03, "district": 0.04, "near": 0.02, "other": 0.11},
}
DEFAULT_U: dict[str, dict[str, float]] = {
    "given_name": {"exact": 0.005, "variant": 0.002, "part": 0.0005, "close": 0.003,
                   "phonetic": 0.005, "fuzzy": 0.03, "initial": 0.002, "other": 0.9525},
    "family_name": {"exact": 0.001, "part": 0.0002, "close": 0.001, "phonetic": 0.002,
                    "fuzzy": 0.02, "initial": 0.002, "other": 0.9738},
    "date_of_birth": {"exact": 0.00015, "transposed": 0.00005, "year_off": 0.0003,
                      "one_digit": 0.004, "digits_swapped": 0.0005, "other": 0.995},
    "postcode": {"full": 0.0002, "sector": 0.002, "district": 0.02, "near": 0.0005,
                 "other": 0.9773},
}
#: P(given and family names swapped | same child).
DEFAULT_SWAP = 0.01
#: P(the child asked about is known to this authority).
DEFAULT_PRESENT_PRIOR = 0.5
PRIOR_FLOOR_RECORDS = 1000
TF_PSEUDO_RECORDS = 1000
#: How far the m (or u) values of one field may sum away from 1.
SUM_TOLERANCE = 0.02


class ModelError(ValueError):
    """An m/u file or value is wrong; the message names it."""


@dataclass(frozen=True)
class MatchModel:
    m: Mapping[str, Mapping[str, float]] = field(default_factory=lambda: DEFAULT_M)
    u: Mapping[str, Mapping[str, float]] = field(default_factory=lambda: DEFAULT_U)
    swap_probability: float = DEFAULT_SWAP
    present_prior: float = DEFAULT_PRESENT_PRIOR

    def __post_init__(self) -> None:
        validate_model(self)
        weights = {f: {lv: math.log2(self.m[f][lv] / self.u[f][lv]) for lv in LEVELS[f]}
                   for f in FIELDS}
        object.__setattr__(self, "_weights", weights)
        object.__setattr__(self, "_swap_bits", math.log2(self.swap_probability))

    def weight(self, field_name: str, level: str | None) -> float:
        """Bits for one field at one level; 0 for a missing value."""
        if level is None:
            return 0.0
        return self._weights[field_name][level]  # type: ignore[attr-defined,no-any-return]

    def exact_weight(self, field_name: str, level: str, count: int, records: int) -> float:
        """Bits for an exact agreement (a name's ``exact``, a postcode's ``full``),
        by how many of the records carry the value."""
        u = (count + TF_PSEUDO_RECORDS * self.u[field_name][level]) / (
            records + TF_PSEUDO_RECORDS)
        return math.log2(self.m[field_name][level] / u)

    @property
    def swap_bits(self) -> float:
        return self._swap_bits  # type: ignore[attr-defined,no-any-return]

    def prior_bits(self, records: int) -> float:
        prior = self.present_prior / max(records, PRIOR_FLOOR_RECORDS)
        return math.log2(prior / (1 - prior))

    def as_dict(self) -> dict[str, Any]:
        return {"m": {f: dict(self.m[f]) for f in FIELDS},
                "u": {f: dict(self.u[f]) for f in FIELDS},
                "swap_probability": self.swap_probability, "present_prior": self.present_prior}


def probability(bits: float) -> float:
    """A match weight plus prior (bits of log odds) as a probability."""
    if bits > 60:
        return 1.0
    if bits < -60:
        return 0.0
    return 1.0 / (1.0 + 2.0 ** -bits)


def _open_unit(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            0.0 < float(value) < 1.0):
        raise ModelError(f"{name}: must be a number between 0 and 1 (exclusive), not {value!r}")
    return float(value)


def validate_model(model: MatchModel) -> None:
    for kind, table in (("m", model.m), ("u", model.u)):
        for f in FIELDS:
            levels = table.get(f)
            if not isinstance(levels, Mapping):
                raise ModelError(f"{kind}.{f}: missing")
            for lv in LEVELS[f]:
                if lv not in levels:
                    raise ModelError(f"{kind}.{f}.{lv}: missing")
                _open_unit(f"{kind}.{f}.{lv}", levels[lv])
            total = sum(levels[lv] for lv in LEVELS[f])
            if abs(total - 1.0) > SUM_TOLERANCE:
                raise ModelError(f"{kind}.{f}: the levels must add up to 1, not {total:.4f}")
    _open_unit("swap_probability", model.swap_probability)
    _open_unit("present_prior", model.present_prior)


def model_from_mapping(data: Any) -> MatchModel:
    """A model from parsed JSON: any m or u value left out keeps its default."""
    if not isinstance(data, dict):
        raise ModelError("the file must hold a JSON object")
    unknown = sorted(set(data) - {"m", "u", "swap_probability", "present_prior", "estimated"})
    if unknown:
        raise ModelError(f"{unknown[0]}: unknown key")
    tables: dict[str, dict[str, dict[str, float]]] = {}
    for kind, defaults in (("m", DEFAULT_M), ("u", DEFAULT_U)):
        given = data.get(kind, {})
        if not isinstance(given, dict):
            raise ModelError(f"{kind}: must be an object of fields")
        table = {f: dict(defaults[f]) for f in FIELDS}
        for f, levels in given.items():
            if f not in LEVELS:
                raise ModelError(f"{kind}.{f}: unknown field")
            if not isinstance(levels, dict):
                raise ModelError(f"{kind}.{f}: must be an object of levels")
            for lv, value in levels.items():
                if lv not in LEVELS[f]:
                    raise ModelError(f"{kind}.{f}.{lv}: unknown level")
                table[f][lv] = _open_unit(f"{kind}.{f}.{lv}", value)
        tables[kind] = table
    return MatchModel(
        m=tables["m"], u=tables["u"],
        swap_probability=_open_unit("swap_probability",
                                    data.get("swap_probability", DEFAULT_SWAP)),
        present_prior=_open_unit("present_prior",
                                 data.get("present_prior", DEFAULT_PRESENT_PRIOR)))


def load_model(path: str | Path) -> MatchModel:
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ModelError(f"{p}: not found") from e
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ModelError(f"{p}: not valid JSON ({type(e).__name__})") from e
    return model_from_mapping(data)


DEFAULT_MODEL = MatchModel()
