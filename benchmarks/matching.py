"""Matching quality of the adapter kit on a generated population (test data).

    .venv/bin/python benchmarks/matching.py [--population 1000] [--queries 400]

Prints precision and recall, overall and per kind of query (exact, typo, name
variant, transposed date of birth, moved house, swapped names, no postcode,
a stranger who is not in the population), at the kit's default thresholds and
any others given with --thresholds, and the time per lookup. Writes JSON to
benchmarks/results/matching.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from adapters.kit.match_quality import evaluate, generate_population, make_queries
from adapters.kit.settings import KitSettings

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--thresholds", nargs="*", default=[],
                        help="extra match:possible pairs, e.g. 0.8:0.6")
    args = parser.parse_args()
    defaults = KitSettings.__dataclass_fields__
    pairs = [(float(defaults["match_threshold"].default),
              float(defaults["possible_threshold"].default))]
    pairs += [tuple(float(x) for x in t.split(":")) for t in args.thresholds]  # type: ignore[misc]

    population = generate_population(args.population, seed=args.seed)
    queries = make_queries(population, args.queries, seed=args.seed + 1)
    report = {"population": args.population, "queries": args.queries, "runs": []}
    for match, possible in pairs:
        started = time.perf_counter()
        quality = evaluate(population, queries, match_threshold=match,
                           possible_threshold=possible)
        per_lookup_ms = (time.perf_counter() - started) * 1000 / len(queries)
        print(f"\nthresholds match={match} possible={possible}: "
              f"{per_lookup_ms:.1f} ms per lookup over {args.population} records")
        print(f"{'kind':16} {'queries':>7} {'right':>6} {'wrong':>6} {'missed':>6} "
              f"{'possible':>8} {'precision':>9} {'recall':>7}")
        rows = {}
        for kind, q in sorted(quality.items(), key=lambda kv: kv[0] != "all"):
            print(f"{kind:16} {q.queries:7} {q.true_matches:6} {q.false_matches:6} "
                  f"{q.missed:6} {q.possible:8} {q.precision:9.3f} {q.recall:7.3f}")
            rows[kind] = {**q.__dict__, "precision": q.precision, "recall": q.recall}
        report["runs"].append({"match_threshold": match, "possible_threshold": possible,
                               "ms_per_lookup": per_lookup_ms, "quality": rows})
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "matching.json").write_text(json.dumps(report, indent=2))
    print(f"\nwritten {RESULTS / 'matching.json'}")


if __name__ == "__main__":
    main()
