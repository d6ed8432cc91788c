"""Audit trail verification speed over a long trail (1,000,000 records; ``--quick``
for 50,000), and proofs over it: from every leaf (as before the stored tree,
federator/audit/tree_store.py) and from the stored tree, in the same run. Prints
a table and writes JSON to benchmarks/results/. Appends per second are
benchmarks/audit_appends.py's.

    .venv/bin/python benchmarks/audit.py [--quick] [--postgres URL]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from soak_services import POSTGRES_URL, PostgresSchema  # benchmarks/ is the script's folder

from federator.audit import tree_store
from federator.audit.chain import GENESIS, MIRRORED, canonical, record_hash
from federator.audit.merkle import consistency_proof, frontier_extend, inclusion_proof
from federator.audit.redaction import seal
from federator.audit.trail import AuditTrail
from federator.signing import BrokerKeys
from federator.storage import audit_records, make_engine, upgrade

RESULTS = Path(__file__).resolve().parent / "results"


def _lookup_record(seq: int, at: str, actors: int = 1) -> dict[str, Any]:
    """Records as a lookup writes them, in turn: ``lookup.requested`` (its purpose
    and justification sealed), then ``lookup.completed`` with two authorities' outcomes."""
    lookup = f"{seq // 2:032x}"
    common = {"seq": seq, "at": at, "lookup_id": lookup, "actor_id": f"u{seq // 2 % actors}",
              "actor_role": "practitioner", "actor_organisation": "Leeds",
              "child_pseudonym": f"{seq // 2:064x}"}
    if seq % 2:
        return {**common, "event": "lookup.requested", "basis_type": "consent",
                "basis": {"type": "consent", "reference": "CONSENT-2026-0042"},
                "purpose": "Assessment under section 17", "scope": "targeted",
                "authorities": ["leeds-cs", "york-health"], "flags": []}
    return {**common, "event": "lookup.completed", "complete": True,
            "outcomes": [{"id": a, "outcome": "no_match", "latency_ms": 40, "professionals": 0}
                         for a in ("leeds-cs", "york-health")]}


Database = tuple[str, Callable[[], tuple[str, PostgresSchema | None]]]


def databases(work: Path, postgres: str | None, *, sqlite: bool = True) -> list[Database]:
    """(name, make) for each database measured: ``make()`` gives a fresh one's URL
    and, for PostgreSQL, its schema to drop afterwards."""
    found: list[Database] = []
    if sqlite:
        found.append(("sqlite", lambda: (f"sqlite:///{work / uuid.uuid4().hex}.sqlite", None)))
    if postgres is not None:
        def make_schema() -> tuple[str, PostgresSchema | None]:
            schema = PostgresSchema.create("bench", postgres)
            return schema.url, schema

        found.append(("postgresql", make_schema))
    return found


def long_trail(url: str, n: int, key: Path, actors: int = 1) -> AuditTrail:
    """A valid trail of n records as the broker writes them, written in bulk (the
    speed of append is measured above): lookups' records (``_lookup_record``), free
    text sealed beside them (format 2, federator.audit.redaction), the filter columns
    mirroring the body, and a checkpoint signed every 1,000 records (AuditTrail's
    default), so that verify checks the texts, the signatures and the roots too.
    ``actors``: how many practitioners the lookups are spread over."""
    engine = make_engine(url)
    upgrade(engine)
    prev, batch = GENESIS, []
    at = datetime.now(UTC).isoformat(timespec="milliseconds")
    with engine.begin() as conn:
        for seq in range(1, n + 1):
            record = _lookup_record(seq, at, actors)
            hashed, texts = seal(record)
            body = canonical(hashed)
            digest = record_hash(prev, body)
            batch.append({"body": body, "prev_hash": prev, "hash": digest, "texts": texts,
                          **{k: hashed.get(k) for k in ("seq", *MIRRORED)}})
            prev = digest
            if len(batch) == 10000:
                conn.execute(audit_records.insert(), batch)
                batch = []
        if batch:
            conn.execute(audit_records.insert(), batch)
    trail = AuditTrail(engine)
    trail.sign_with(BrokerKeys.load(key, "federator", create=True))
    for size in range(1000, n + 1, 1000):
        trail.checkpoint(upto=size)
    return trail


def proofs(trail: AuditTrail, samples: int = 100) -> dict[str, float]:
    """Milliseconds per proof against the tree of every record: from every leaf as
    before (one of each: it reads the whole trail) and from the stored tree
    (median of ``samples`` random sizes and records)."""
    size = trail.latest().tree_size  # type: ignore[union-attr]
    rng = random.Random(18)
    started = time.perf_counter()
    every = trail.leaf_hashes(size)
    consistency_proof(size // 3, every)
    frontier_extend([], 0, every)
    before_consistency = time.perf_counter() - started
    started = time.perf_counter()
    every = trail.leaf_hashes(size)
    inclusion_proof(size // 3, every)
    before_inclusion = time.perf_counter() - started
    tree_store.catch_up(trail.engine, size)  # filled at signing already: a no-op
    timed: dict[str, list[float]] = {"consistency": [], "inclusion": []}
    for _ in range(samples):
        first = rng.randint(1, size)
        started = time.perf_counter()
        assert tree_store.consistency(trail.engine, first, size) is not None
        timed["consistency"].append(time.perf_counter() - started)
        index = rng.randrange(size)
        started = time.perf_counter()
        assert tree_store.inclusion(trail.engine, index, size) is not None
        timed["inclusion"].append(time.perf_counter() - started)
    return {"consistency_before_ms": before_consistency * 1000,
            "consistency_after_ms": statistics.median(timed["consistency"]) * 1000,
            "inclusion_before_ms": before_inclusion * 1000,
            "inclusion_after_ms": statistics.median(timed["inclusion"]) * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--postgres", default=POSTGRES_URL)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    trail_size = 50_000 if args.quick else 1_000_000
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, make in databases(work, None if args.no_postgres else args.postgres):
            url, schema = make()
            try:
                trail = long_trail(url, trail_size, work / f"key-{uuid.uuid4().hex[:6]}.json")
                started, cpu = time.perf_counter(), time.process_time()
                verdict = trail.verify()
                elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
                assert verdict.ok and verdict.count == trail_size, verdict
                proof_ms = proofs(trail)
                trail.engine.dispose()
            finally:
                if schema is not None:
                    schema.drop()
            rows.append({"measure": "verified records/s", "database": name, "writers": None,
                         "records": trail_size, "value": round(trail_size / elapsed, 1),
                         "seconds": round(elapsed, 2), "cpu_seconds": round(cpu, 2)})
            print(f"{name:11} verify {trail_size} records: {elapsed:.1f} s "
                  f"({trail_size / elapsed:,.0f}/s; {cpu:.1f} s of this process's CPU, "
                  f"{trail_size / cpu:,.0f}/s)", flush=True)
            for measure, value in proof_ms.items():
                rows.append({"measure": f"proof ms, {measure.removesuffix('_ms')}",
                             "database": name, "writers": None, "records": trail_size,
                             "value": round(value, 3)})
                print(f"{name:11} {measure}: {value:,.2f} ms", flush=True)
    print()
    print(f"{'measure':28} {'database':11} {'writers':>7} {'records':>9} {'value':>12}")
    for r in rows:
        print(f"{r['measure']:28} {r['database']:11} {r['writers'] or '':>7} "
              f"{r['records']:>9} {r['value']:>12,.1f}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"audit-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps({"quick": args.quick, "cpus": os.cpu_count(), "results": rows},
                              indent=2))
    print(f"\nwritten {out}")


if __name__ == "__main__":
    main()
