"""The start-up check for lookups cut off by a crash (federator/lookup/interrupted.py):
how long ``close_interrupted`` takes on a trail of N finished lookups (each a
``lookup.requested`` and its ``lookup.completed``) with a few cut off, on SQLite
and PostgreSQL. Prints a table and writes JSON to benchmarks/results/.

    .venv/bin/python benchmarks/interrupted.py [--lookups 100000] [--postgres URL]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from soak_services import POSTGRES_URL, PostgresSchema  # benchmarks/ is the script's folder

from federator.audit.chain import GENESIS, MIRRORED, canonical, record_hash
from federator.audit.trail import AuditTrail
from federator.lookup.interrupted import close_interrupted, interrupted_after_s
from federator.storage import audit_records, make_engine, upgrade

RESULTS = Path(__file__).resolve().parent / "results"
CUT_OFF_EVERY = 10000


def trail_of(url: str, lookups: int) -> AuditTrail:
    """Finished lookups written in bulk as a valid chain; every CUT_OFF_EVERY-th
    has no completion."""
    engine = make_engine(url)
    upgrade(engine)
    prev, batch, seq = GENESIS, [], 0
    # within the start-up check's horizon, so all are read
    at = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="milliseconds")
    with engine.begin() as conn:
        for i in range(lookups):
            events = ["lookup.requested"] + ([] if i % CUT_OFF_EVERY == 0
                                             else ["lookup.completed"])
            for event in events:
                seq += 1
                record = {"seq": seq, "at": at, "event": event, "lookup_id": f"L{i:09d}",
                          "actor_id": "u1", "child_pseudonym": f"{i:064x}",
                          "deadline_ms": 5000, "authorities": ["leeds-cs"]}
                body = canonical(record)
                digest = record_hash(prev, body)
                batch.append({"body": body, "prev_hash": prev, "hash": digest,
                              **{k: record.get(k) for k in ("seq", *MIRRORED)}})
                prev = digest
                if len(batch) == 10000:
                    conn.execute(audit_records.insert(), batch)
                    batch = []
        if batch:
            conn.execute(audit_records.insert(), batch)
    return AuditTrail(engine, checkpoint_every=0)


def measure(trail: AuditTrail) -> dict[str, float]:
    began = time.perf_counter()
    closed = close_interrupted(trail, after_s=interrupted_after_s(15000))
    first = time.perf_counter() - began
    began = time.perf_counter()
    again = close_interrupted(trail, after_s=interrupted_after_s(15000))
    return {"closed": closed, "first_s": round(first, 3), "again_closed": again,
            "again_s": round(time.perf_counter() - began, 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lookups", type=int, default=100000)
    parser.add_argument("--postgres", default=POSTGRES_URL)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(trail_of(f"sqlite:///{tmp}/bench.sqlite", args.lookups))
        rows.append({"database": "sqlite", "lookups": args.lookups, **result})
    schema = PostgresSchema.create("bench_interrupted", args.postgres)
    try:
        result = measure(trail_of(schema.url, args.lookups))
        rows.append({"database": "postgresql", "lookups": args.lookups, **result})
    finally:
        schema.drop()
    print(f"{'database':<11} {'lookups':>8} {'closed':>6} {'first (s)':>9} {'again (s)':>9}")
    for r in rows:
        print(f"{r['database']:<11} {r['lookups']:>8} {r['closed']:>6} {r['first_s']:>9} "
              f"{r['again_s']:>9}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "interrupted.json"
    out.write_text(json.dumps({"at": datetime.now(UTC).isoformat(), "rows": rows}, indent=2))
    print(f"written {out}")


if __name__ == "__main__":
    main()
