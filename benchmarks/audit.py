"""Audit trail speed: appends per second (SQLite, PostgreSQL; 1 and 4 writer
and 8 writer processes) and verification speed over a long trail (1,000,000 records; ``--quick``
for 50,000). Prints a table and writes JSON to benchmarks/results/.

    .venv/bin/python benchmarks/audit.py [--quick] [--postgres URL]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from soak_services import POSTGRES_URL, PostgresSchema  # benchmarks/ is the script's folder

from federator.audit.chain import GENESIS, MIRRORED, canonical, record_hash
from federator.audit.trail import AuditTrail
from federator.signing import BrokerKeys
from federator.storage import audit_records, make_engine, upgrade

RESULTS = Path(__file__).resolve().parent / "results"


WRITER = """
import sys, time
from pathlib import Path
from federator.audit.trail import AuditTrail
from federator.signing import BrokerKeys
from federator.storage import make_engine
url, count, name, key, go = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
pairs = sys.argv[6] == "pairs"
trail = AuditTrail(make_engine(url), checkpoint_every=1000)
trail.sign_with(BrokerKeys.load(Path(key), "federator", create=False))
while not Path(go).exists():
    time.sleep(0.01)
for i in range(count):
    trail.append("lookup.requested", lookup_id=f"{name}-{i}", actor_id=name,
                 actor_organisation="Leeds", basis={"type": "consent"}, scope="targeted",
                 child_pseudonym=f"{i:064x}", authorities=["leeds-cs", "york-health"])
    if pairs:  # as a lookup writes them: requested, then completed
        trail.append("lookup.completed", lookup_id=f"{name}-{i}", actor_id=name,
                     actor_organisation="Leeds", child_pseudonym=f"{i:064x}", complete=True,
                     outcomes=[{"id": a, "outcome": "no_match", "latency_ms": 40,
                                "professionals": 0} for a in ("leeds-cs", "york-health")])
"""


def appends(url: str, writers: int, per_writer: int, workdir: Path, mode: str) -> float:
    """Records per second: ``requested`` appends only ``lookup.requested`` (each
    flushed to disk before the next); ``pairs`` appends what a lookup writes,
    ``lookup.requested`` then ``lookup.completed`` (federator.audit.trail.RELAXED)."""
    engine = make_engine(url)
    upgrade(engine)
    key = workdir / f"key-{uuid.uuid4().hex[:6]}.json"
    BrokerKeys.load(key, "federator", create=True)
    go = workdir / f"go-{uuid.uuid4().hex[:6]}"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, url, str(per_writer), f"w{i}",
                               str(key), str(go), mode]) for i in range(writers)]
    time.sleep(1.5)  # let the interpreters start before the clock does
    started = time.perf_counter()
    go.touch()
    for p in procs:
        if p.wait() != 0:
            raise RuntimeError("a writer failed")
    elapsed = time.perf_counter() - started
    records = writers * per_writer * (2 if mode == "pairs" else 1)
    verdict = AuditTrail(engine).verify()
    engine.dispose()
    if not verdict.ok or verdict.count != records:
        raise RuntimeError(f"trail broken after the run: {verdict}")
    return records / elapsed


def long_trail(url: str, n: int) -> AuditTrail:
    """A valid chain of n records written in bulk (the speed of append is measured above)."""
    engine = make_engine(url)
    upgrade(engine)
    prev, batch = GENESIS, []
    at = datetime.now(UTC).isoformat(timespec="milliseconds")
    with engine.begin() as conn:
        for seq in range(1, n + 1):
            record = {"seq": seq, "at": at, "event": "lookup.requested", "actor_id": "u1",
                      "actor_organisation": "Leeds", "basis_type": "consent",
                      "child_pseudonym": f"{seq:064x}", "authorities": ["leeds-cs"],
                      "purpose": "Assessment under section 17", "flags": []}
            body = canonical(record)
            digest = record_hash(prev, body)
            # the filter columns mirror the body, as AuditTrail writes them (verify checks)
            batch.append({"body": body, "prev_hash": prev, "hash": digest,
                          **{k: record.get(k) for k in ("seq", *MIRRORED)}})
            prev = digest
            if len(batch) == 10000:
                conn.execute(audit_records.insert(), batch)
                batch = []
        if batch:
            conn.execute(audit_records.insert(), batch)
    return AuditTrail(engine)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--postgres", default=POSTGRES_URL)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--appends-only", action="store_true",
                        help="skip the verification row (measured by other runs)")
    parser.add_argument("--writers", default="1,4,8",
                        help="writer process counts, comma-separated")
    args = parser.parse_args()
    counts = [int(w) for w in args.writers.split(",")]
    per_writer = 100 if args.quick else 500
    trail_size = 50_000 if args.quick else 1_000_000
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        databases: list[tuple[str, Callable[[], tuple[str, PostgresSchema | None]]]] = []
        if not args.no_sqlite:
            databases.append(
                ("sqlite", lambda: (f"sqlite:///{work / uuid.uuid4().hex}.sqlite", None)))
        if not args.no_postgres:
            def make_schema() -> tuple[str, PostgresSchema | None]:
                schema = PostgresSchema.create("bench", args.postgres)
                return schema.url, schema

            databases.append(("postgresql", make_schema))
        for name, make in databases:
            for mode, writers in [(m, w) for m in ("requested", "pairs") for w in counts]:
                url, schema = make()
                try:
                    rate = appends(url, writers, per_writer, work, mode)
                finally:
                    if schema is not None:
                        schema.drop()
                measure = "appends/s" if mode == "requested" else "appends/s (lookups)"
                records = writers * per_writer * (2 if mode == "pairs" else 1)
                rows.append({"measure": measure, "database": name, "writers": writers,
                             "records": records, "value": round(rate, 1)})
                print(f"{name:11} {measure}, {writers} writer(s): {rate:8.1f}/s", flush=True)
            if args.appends_only:
                continue
            url, schema = make()
            try:
                trail = long_trail(url, trail_size)
                started = time.perf_counter()
                verdict = trail.verify()
                elapsed = time.perf_counter() - started
                trail.engine.dispose()
                assert verdict.ok and verdict.count == trail_size, verdict
            finally:
                if schema is not None:
                    schema.drop()
            rows.append({"measure": "verified records/s", "database": name, "writers": None,
                         "records": trail_size, "value": round(trail_size / elapsed, 1),
                         "seconds": round(elapsed, 2)})
            print(f"{name:11} verify {trail_size} records: {elapsed:.1f} s "
                  f"({trail_size / elapsed:,.0f}/s)", flush=True)
    print()
    print(f"{'measure':20} {'database':11} {'writers':>7} {'records':>9} {'value':>12}")
    for r in rows:
        print(f"{r['measure']:20} {r['database']:11} {r['writers'] or '':>7} "
              f"{r['records']:>9} {r['value']:>12,.1f}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"audit-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps({"quick": args.quick, "cpus": os.cpu_count(), "results": rows},
                              indent=2))
    print(f"\nwritten {out}")


if __name__ == "__main__":
    main()
