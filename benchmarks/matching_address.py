"""What an optional address line would add to the kit's matching on FEBRL 4
(``benchmarks/matching.py``): a measurement, not a kit feature.

The kit's wire child carries name, date of birth and postcodes only; adding
an address would change ``federator-lookup/1`` and the broker's form, which
is the lead's decision. So this measures it from the outside: the kit's
``compare`` is wrapped for the run so that each comparison also weighs the
address (FEBRL's ``street_number`` + ``address_1``, and ``suburb``) at one of
:data:`LEVELS` (missing on either side: 0 bits, like every other field),
with u from random pairs of the originals and m by EM over the lookups'
candidate pairs together with the other four fields (the same EM as the
"m by EM" row). Blocking is unchanged (the address is not a key).
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from rapidfuzz.distance import OSA, JaroWinkler

from adapters.kit import matching as kit_matching
from adapters.kit.candidates import Prepared, RecordIndex, candidates, prepare_request
from adapters.kit.estimate import em_fields, levels_of
from adapters.kit.matching import index_of
from adapters.kit.model import FIELDS, MatchModel
from adapters.kit.model import LEVELS as KIT_LEVELS

LEVELS = ("exact", "close", "street", "suburb", "other")
#: Where EM starts (and what it is smoothed towards).
M0 = {"exact": 0.7, "close": 0.15, "street": 0.05, "suburb": 0.05, "other": 0.05}
U0 = {"exact": 0.0002, "close": 0.0005, "street": 0.002, "suburb": 0.01, "other": 0.9873}


def _norm(value: Any) -> str:
    return re.sub(r"[^a-z0-9]", "", value.lower()) if isinstance(value, str) else ""


def address_of(row: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """(street number + street, street, suburb), normalised; None when all missing."""
    number, street, suburb = (_norm(row.get(k)) for k in ("street_number", "address_1", "suburb"))
    if not (number or street or suburb):
        return None
    return number + street, street, suburb


def compare_address(a: tuple[str, str, str] | None, b: tuple[str, str, str] | None) -> str | None:
    if a is None or b is None:
        return None
    line_a, street_a, suburb_a = a
    line_b, street_b, suburb_b = b
    if line_a and line_a == line_b:
        return "exact"
    if line_a and line_b and (OSA.distance(line_a, line_b) <= 2
                              or JaroWinkler.similarity(line_a, line_b) >= 0.92):
        return "close"
    if street_a and street_b and JaroWinkler.similarity(street_a, street_b) >= 0.92:
        return "street"
    if suburb_a and suburb_b and (suburb_a == suburb_b
                                  or JaroWinkler.similarity(suburb_a, suburb_b) >= 0.92):
        return "suburb"
    return "other"


class AddressWeights:
    """The address of each record and of the lookup being matched, and their weights."""

    def __init__(self, records: Sequence[tuple[str, str, str] | None]) -> None:
        self.records = list(records)
        self.asked: tuple[str, str, str] | None = None
        self.m = dict(M0)
        self.u = dict(U0)

    def bits(self, record_position: int) -> float:
        level = compare_address(self.asked, self.records[record_position])
        return 0.0 if level is None else math.log2(self.m[level] / self.u[level])

    def estimate_u(self, pairs: int = 200_000, seed: int = 1) -> None:
        rng = random.Random(seed)
        counts = dict.fromkeys(LEVELS, 0)
        n = len(self.records)
        for _ in range(pairs):
            i, j = rng.randrange(n), rng.randrange(n)
            level = compare_address(self.records[i], self.records[j]) if i != j else None
            if level is not None:
                counts[level] += 1
        seen = sum(counts.values())
        self.u = {lv: max(1e-7, (counts[lv] + 50 * U0[lv]) / (seen + 50)) for lv in LEVELS}


def estimate(records: Any, addresses: AddressWeights, asked: Sequence[tuple[str, str, str] | None],
             queries: Sequence[Any], model: MatchModel) -> MatchModel:
    """u of the address from random pairs; m of all five fields (and the share of
    lookups whose child is on file) by EM over the lookups' candidate pairs."""
    from adapters.kit.model import model_from_mapping

    addresses.estimate_u()
    index = index_of(records)
    vectors = []
    for q, address in zip(queries, asked, strict=True):
        prepared = prepare_request(q.child)
        for i in candidates(index, prepared):
            vector = levels_of(prepared, index.prepared[i])
            vector["address"] = compare_address(address, addresses.records[i])
            vectors.append(vector)
    levels = {**KIT_LEVELS, "address": LEVELS}
    m, share = em_fields(vectors, {**{f: dict(model.m[f]) for f in FIELDS}, "address": M0},
                         {**{f: dict(model.u[f]) for f in FIELDS}, "address": addresses.u},
                         levels, share=len(queries) / max(1, len(vectors)))
    addresses.m = m.pop("address")
    present = min(0.99, share * len(vectors) / len(queries))
    return model_from_mapping({**model.as_dict(), "m": m, "present_prior": present})


@contextmanager
def weighing_addresses(addresses: AddressWeights, index: RecordIndex,
                       asked: Mapping[int, tuple[str, str, str] | None]) -> Iterator[None]:
    """For the run: each lookup's address (found by its child's identity) weighs
    in every comparison with a record."""
    compare, prepare = kit_matching.compare, kit_matching.prepare_request
    position = {id(p): i for i, p in enumerate(index.prepared)}

    def prepare_with_address(child: Mapping[str, Any]) -> Prepared:
        addresses.asked = asked.get(id(child.get("postcodes")))
        return prepare(child)

    def compare_with_address(query: Prepared, record: Prepared, idx: RecordIndex,
                             model: MatchModel = kit_matching.DEFAULT_MODEL) -> Any:
        c = compare(query, record, idx, model)
        return replace(c, bits=c.bits + addresses.bits(position[id(record)]))

    kit_matching.compare = compare_with_address  # type: ignore[assignment]
    kit_matching.prepare_request = prepare_with_address  # type: ignore[assignment]
    try:
        yield
    finally:
        kit_matching.compare, kit_matching.prepare_request = compare, prepare
