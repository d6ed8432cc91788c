"""Audit appends per second (SQLite, PostgreSQL; 1, 4 and 8 writer processes). On
PostgreSQL, in the same run: ``enqueued``, the lookup's path (``AuditTrail.enqueue``:
the entry committed to the queue, integrated by the sequencer,
federator/audit/sequencer.py; counted until every entry is a record); ``queued``,
``append`` through the queue, waiting for its record (federator/audit/batching.py);
with ``--locked``, the one-lock path both replaced; with CPU per record; the trail is first
seeded with ``--history`` records (benchmarks/audit.py's ``long_trail``, which also
measures verification and proofs). Prints a table and writes JSON to
benchmarks/results/.

    .venv/bin/python benchmarks/audit_appends.py [--quick] [--locked] [--writers 1,4,8]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from audit import databases, long_trail  # benchmarks/ is the script's folder
from soak_services import POSTGRES_URL  # benchmarks/ is the script's folder

from federator.audit.trail import AuditTrail
from federator.signing import BrokerKeys
from federator.storage import make_engine, upgrade

RESULTS = Path(__file__).resolve().parent / "results"


WRITER = """
import os, resource, statistics, sys, time
from pathlib import Path
from sqlalchemy import text
from federator.audit.trail import AuditTrail
from federator.signing import BrokerKeys
from federator.storage import make_engine
url, count, name, key, go = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
pairs = sys.argv[6] == "pairs"
spread = int(sys.argv[8])  # practitioners the writers' lookups come from (0: one per writer)
app = f"fedbench-{name}-{os.getpid()}"
if url.startswith("postgresql"):
    url += ("&" if "?" in url else "?") + "application_name=" + app
engine = make_engine(url)
trail = AuditTrail(engine, checkpoint_every=1000)
trail.sign_with(BrokerKeys.load(Path(key), "federator", create=False))
append = trail.append
if sys.argv[7] == "locked":  # the path before the queue: one lock over the whole append
    append = lambda event, **fields: trail._append(event, fields, None)
elif sys.argv[7] == "enqueued":  # the lookup's path: queued, integrated by the sequencer
    append = trail.enqueue
with engine.connect() as conn:  # a broker's connections are up before its lookups come
    conn.execute(text("SELECT 1"))
Path(go + "." + name).touch()  # ready: the clock starts once every writer is
while not Path(go).exists():
    time.sleep(0.005)
start = resource.getrusage(resource.RUSAGE_SELF)
waits = []
writer = int(name[1:])
for i in range(count):
    actor = f"p{(i * 8 + writer) % spread}" if spread else name
    began = time.perf_counter()
    append("lookup.requested", lookup_id=f"{name}-{i}", actor_id=actor,
           actor_organisation="Leeds", basis={"type": "consent"}, scope="targeted",
           child_pseudonym=f"{i:064x}", authorities=["leeds-cs", "york-health"])
    waits.append(time.perf_counter() - began)
    if pairs:  # as a lookup writes them: requested, then completed
        began = time.perf_counter()
        append("lookup.completed", lookup_id=f"{name}-{i}", actor_id=actor,
               actor_organisation="Leeds", child_pseudonym=f"{i:064x}", complete=True,
               outcomes=[{"id": a, "outcome": "no_match", "latency_ms": 40,
                          "professionals": 0} for a in ("leeds-cs", "york-health")])
        waits.append(time.perf_counter() - began)
trail.close()  # "enqueued": the sequencer stops after its pass; what is left, integrated
done = time.time()  # every record this writer appended is in the chain by now
# CPU spent: this process, and its PostgreSQL backends (read from /proc before they go)
own = resource.getrusage(resource.RUSAGE_SELF)
server = 0.0
if url.startswith("postgresql"):
    with engine.connect() as conn:
        pids = conn.execute(text("SELECT pid FROM pg_stat_activity WHERE application_name = :a"),
                            {"a": app}).scalars().all()
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            server += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
print(own.ru_utime + own.ru_stime - start.ru_utime - start.ru_stime, server, done,
      statistics.median(waits), sorted(waits)[int(len(waits) * 0.99)])
"""


def appends(url: str, writers: int, per_writer: int, workdir: Path, mode: str,
            path: str = "queued", history: int = 0, spread: int = 0
            ) -> tuple[float, float, float, float]:
    """Records per second: ``requested`` appends only ``lookup.requested`` (each
    flushed to disk before the next); ``pairs`` appends what a lookup writes,
    ``lookup.requested`` then ``lookup.completed`` (federator.audit.trail.RELAXED).
    The trail first holds ``history`` records of 500 other practitioners, and the
    database's statistics of them (as autovacuum keeps them): on an empty,
    never analysed table PostgreSQL plans the flag history's queries as if it
    would stay empty, and they walk every record of the event. Also returns the
    CPU milliseconds per record, writers (from the start signal) and their
    PostgreSQL backends together: on a shared machine the rate follows the CPU
    left over, this does not; and how long a writer waited for one append (p50,
    p99). The clock runs from when every writer is ready (interpreter up,
    connected) until the last record is in the chain (for ``enqueued``, integrated)."""
    engine = make_engine(url)
    upgrade(engine)
    key = workdir / f"key-{uuid.uuid4().hex[:6]}.json"
    if history:
        long_trail(url, history, key, actors=500).engine.dispose()
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                conn.exec_driver_sql("ANALYZE")
                conn.commit()
    before = history
    BrokerKeys.load(key, "federator", create=True)
    go = workdir / f"go-{uuid.uuid4().hex[:6]}"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, url, str(per_writer), f"w{i}",
                               str(key), str(go), mode, path, str(spread)], stdout=subprocess.PIPE)
             for i in range(writers)]
    while not all(Path(f"{go}.w{i}").exists() for i in range(writers)):
        if any(p.poll() is not None for p in procs):
            raise RuntimeError("a writer failed before starting")
        time.sleep(0.01)
    go.touch()
    started = time.time()
    client = server = last = 0.0
    p50s, p99s = [], []
    for p in procs:
        out, _ = p.communicate()
        if p.returncode != 0:
            raise RuntimeError("a writer failed")
        mine, theirs, done, p50, p99 = (float(x) for x in out.split())
        client, server, last = client + mine, server + theirs, max(last, done)
        p50s.append(p50)
        p99s.append(p99)
    elapsed = last - started  # until the last writer's records were all in the chain
    records = writers * per_writer * (2 if mode == "pairs" else 1)
    verdict = AuditTrail(engine).verify()
    engine.dispose()
    if not verdict.ok or verdict.count != before + records:
        raise RuntimeError(f"trail broken after the run: {verdict}")
    return (records / elapsed, (client + server) * 1000 / records,
            statistics.median(p50s) * 1000, max(p99s) * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--postgres", default=POSTGRES_URL)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--locked", action="store_true",
                        help="PostgreSQL: also measure the path before the queue (one "
                        "lock held over the whole append, commit included), same run")
    parser.add_argument("--history", type=int, default=20_000,
                        help="records in the trail before the writers start")
    parser.add_argument("--practitioners", default="0,500",
                        help="practitioners the writers' lookups come from, comma-separated "
                        "(0: each writer one of its own, as fast as it can: every flag's "
                        "history at its longest; 500: a federation's practitioners, a "
                        "broker process serving many)")
    parser.add_argument("--writers", default="1,4,8",
                        help="writer process counts, comma-separated")
    args = parser.parse_args()
    counts = [int(w) for w in args.writers.split(",")]
    per_writer = 100 if args.quick else 500
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, make in databases(work, None if args.no_postgres else args.postgres,
                                    sqlite=not args.no_sqlite):
            paths = (["enqueued", "queued", "locked"] if args.locked else
                     ["enqueued", "queued"]) if name == "postgresql" else ["locked"]
            spreads = [int(p) for p in args.practitioners.split(",")]
            for mode, writers, path, spread in [(m, w, p, n) for m in ("requested", "pairs")
                                                for w in counts for n in spreads
                                                for p in paths]:
                url, schema = make()
                try:
                    rate, cpu, p50, p99 = appends(url, writers, per_writer, work, mode, path,
                                        args.history, spread)
                finally:
                    if schema is not None:
                        schema.drop()
                measure = "appends/s" if mode == "requested" else "appends/s (lookups)"
                records = writers * per_writer * (2 if mode == "pairs" else 1)
                rows.append({"measure": measure, "database": name, "path": path,
                             "writers": writers, "practitioners": spread or writers,
                             "records": records, "value": round(rate, 1),
                             "cpu_ms": round(cpu, 2), "wait_p50_ms": round(p50, 2),
                             "wait_p99_ms": round(p99, 2)})
                print(f"{name:11} {path:8} {measure}, {writers} writer(s), "
                      f"{spread or writers} practitioner(s): {rate:8.1f}/s "
                      f"({cpu:.2f} CPU ms each; waits p50 {p50:.2f} ms, p99 {p99:.1f} ms)",
                      flush=True)
    print()
    print(f"{'measure':20} {'database':11} {'path':8} {'writers':>7} {'practs':>6} "
          f"{'records':>8} {'value':>10} {'CPU ms':>7} {'wait p50':>8} {'p99':>6}")
    for r in rows:
        print(f"{r['measure']:20} {r['database']:11} {r['path']:8} {r['writers'] or '':>7} "
              f"{r['practitioners']:>6} {r['records']:>8} {r['value']:>10,.1f} "
              f"{r['cpu_ms']:>7} {r['wait_p50_ms']:>8} {r['wait_p99_ms']:>6}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"audit-appends-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps({"quick": args.quick, "cpus": os.cpu_count(),
                               "load": os.getloadavg(), "results": rows},
                              indent=2))
    print(f"\nwritten {out}")


if __name__ == "__main__":
    main()
