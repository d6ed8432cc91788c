"""Matching quality of the adapter kit on a generated population (test data).

    .venv/bin/python benchmarks/matching.py [--population 1000] [--queries 400]

Prints precision and recall, overall and per kind of query (exact, typo, name
variant, transposed date of birth, moved house, swapped names, no postcode,
a stranger who is not in the population), at the kit's default thresholds and
any others given with --thresholds, and the time per lookup, with candidate
narrowing (the kit's default) and with a full scan of every record: the two must
give the same precision and recall. Then a timing table: matching time per
lookup at 1k, 10k and 100k records (``--sizes``), full scan against indexed, in
the same run. Writes JSON to benchmarks/results/matching.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from adapters.kit.match_quality import (
    KINDS,
    evaluate,
    generate_population,
    make_queries,
)
from adapters.kit.matching import MOVED_HOUSE_MATCH, MOVED_HOUSE_POSSIBLE, match_child
from adapters.kit.settings import KitSettings

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--thresholds", nargs="*", default=[],
                        help="extra match:possible pairs, e.g. 0.8:0.6")
    parser.add_argument("--sizes", nargs="*", type=int, default=[1000, 10000, 100000],
                        help="population sizes for the timing table (empty: skip it)")
    args = parser.parse_args()
    defaults = KitSettings.__dataclass_fields__
    pairs = [(float(defaults["match_threshold"].default),
              float(defaults["possible_threshold"].default))]
    pairs += [tuple(float(x) for x in t.split(":")) for t in args.thresholds]  # type: ignore[misc]
    runs = [(m, p, MOVED_HOUSE_POSSIBLE) for m, p in pairs]
    runs.append((pairs[0][0], pairs[0][1], MOVED_HOUSE_MATCH))

    population = generate_population(args.population, seed=args.seed)
    queries = make_queries(population, args.queries, seed=args.seed + 1)
    report = {"population": args.population, "queries": args.queries, "runs": []}
    for match, possible, moved_house in runs:
        started = time.perf_counter()
        quality = evaluate(population, queries, match_threshold=match,
                           possible_threshold=possible, moved_house=moved_house)
        per_lookup_ms = (time.perf_counter() - started) * 1000 / len(queries)
        started = time.perf_counter()
        full = evaluate(population, queries, match_threshold=match,
                        possible_threshold=possible, narrow=False, moved_house=moved_house)
        full_ms = (time.perf_counter() - started) * 1000 / len(queries)
        same = full == quality
        print(f"\nthresholds match={match} possible={possible} moved_house={moved_house}: "
              f"{per_lookup_ms:.2f} ms per lookup over {args.population} records "
              f"(full scan {full_ms:.1f} ms); same precision and recall as the full scan: "
              f"{'yes' if same else 'NO'}")
        print(f"{'kind':16} {'queries':>7} {'right':>6} {'wrong':>6} {'missed':>6} "
              f"{'possible':>8} {'precision':>9} {'recall':>7}")
        rows = {}
        for kind, q in sorted(quality.items(), key=lambda kv: kv[0] != "all"):
            print(f"{kind:16} {q.queries:7} {q.true_matches:6} {q.false_matches:6} "
                  f"{q.missed:6} {q.possible:8} {q.precision:9.3f} {q.recall:7.3f}")
            rows[kind] = {**q.__dict__, "precision": q.precision, "recall": q.recall}
        report["runs"].append({"match_threshold": match, "possible_threshold": possible,
                               "moved_house": moved_house,
                               "ms_per_lookup": per_lookup_ms,
                               "ms_per_lookup_full_scan": full_ms,
                               "same_as_full_scan": same, "quality": rows})
    report["timing"] = timing_table(args.sizes, args.seed) if args.sizes else []
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "matching.json").write_text(json.dumps(report, indent=2))
    print(f"\nwritten {RESULTS / 'matching.json'}")


def timing_table(sizes: list[int], seed: int) -> list[dict[str, object]]:
    """Per-lookup matching time, full scan against indexed, at each size (one run)."""
    print(f"\n{'records':>8} {'index build':>12} {'indexed ms':>11} {'full scan ms':>13} "
          f"{'ratio':>7} {'candidates':>10} {'same':>5}")
    rows = []
    for n in sizes:
        population = generate_population(n, seed=seed)
        started = time.perf_counter()
        index = population.match_index
        build_ms = (time.perf_counter() - started) * 1000
        asked = [{"nhs_number": None, **q.child}
                 for q in make_queries(population, 10 * len(KINDS), seed=seed + 1)]
        # The full scan costs ~0.26 ms a record: fewer lookups at larger sizes.
        scanned = asked[:max(len(KINDS), min(len(asked), 2_000_000 // n // 10))]
        started = time.perf_counter()
        narrowed = [match_child(c, population) for c in asked]
        indexed_ms = (time.perf_counter() - started) * 1000 / len(asked)
        started = time.perf_counter()
        full = [match_child(c, population, narrow=False) for c in scanned]
        full_ms = (time.perf_counter() - started) * 1000 / len(scanned)
        same = all(a == b for a, b in zip(narrowed, full, strict=False))
        from adapters.kit.candidates import candidates

        sizes_seen = [len(candidates(index, c, 0.6) or ()) for c in asked]
        mean_candidates = sum(sizes_seen) / len(sizes_seen)
        print(f"{n:8} {build_ms:10.0f} ms {indexed_ms:11.3f} {full_ms:13.1f} "
              f"{full_ms / indexed_ms:6.0f}x {mean_candidates:10.1f} "
              f"{'yes' if same else 'NO':>5}")
        rows.append({"records": n, "index_build_ms": build_ms, "indexed_ms": indexed_ms,
                     "indexed_lookups": len(asked), "full_scan_ms": full_ms,
                     "full_scan_lookups": len(scanned), "ratio": full_ms / indexed_ms,
                     "mean_candidates": mean_candidates, "same_answers": same})
    return rows


if __name__ == "__main__":
    main()
