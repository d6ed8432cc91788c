"""The baseline of ``benchmarks/matching.py``: recordlinkage 0.16, a standard
record-linkage pipeline from PyPI, on the same four fields and lookups."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from adapters.kit.match_quality import Quality, Query
from adapters.kit.sources import ChildRecord


def baseline(records: Sequence[ChildRecord], queries: Sequence[Query]) -> tuple[Quality, float]:
    import pandas as pd
    import recordlinkage

    def frame(rows: list[dict[str, Any]]) -> Any:
        return pd.DataFrame(rows).fillna("")

    a = frame([{"given_name": r.given_name.lower(), "surname": r.family_name.lower(),
                "date_of_birth": r.date_of_birth.isoformat() if r.date_of_birth else "",
                "postcode": (r.postcode or "").replace(" ", "").upper()} for r in records])
    b = frame([{"given_name": (q.child.get("given_name") or "").lower(),
                "surname": (q.child.get("family_name") or "").lower(),
                "date_of_birth": q.child.get("date_of_birth") or "",
                "postcode": (q.child["postcodes"][0] if q.child.get("postcodes") else ""
                             ).replace(" ", "").upper()} for q in queries])
    started = time.perf_counter()
    indexer = recordlinkage.Index()
    for column in ("given_name", "surname", "date_of_birth", "postcode"):
        indexer.block(column)
    pairs = indexer.index(a, b)
    compare = recordlinkage.Compare()
    compare.string("given_name", "given_name", method="jarowinkler", threshold=0.85,
                   label="given_name")
    compare.string("surname", "surname", method="jarowinkler", threshold=0.85, label="surname")
    compare.exact("date_of_birth", "date_of_birth", label="date_of_birth")
    compare.exact("postcode", "postcode", label="postcode")
    features = compare.compute(pairs, a, b)
    links = recordlinkage.ECMClassifier(binarize=0.5).fit_predict(features)
    ms = (time.perf_counter() - started) * 1000 / len(queries)
    position = {r.child_ref: i for i, r in enumerate(records)}
    truth = {(position[q.expected], j) for j, q in enumerate(queries) if q.expected is not None}
    predicted = {(int(i), int(j)) for i, j in links}
    candidates_found = {(int(i), int(j)) for i, j in pairs} & truth
    right = len(predicted & truth)
    q = Quality(queries=len(queries), true_matches=right, false_matches=len(predicted - truth),
                missed=len(truth) - right, in_candidates=len(candidates_found),
                findable=len(truth))
    return q, ms
