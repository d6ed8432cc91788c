"""Audit appends per second (SQLite, PostgreSQL; 1, 4 and 8 writer processes), the
queued path (federator/audit/batching.py) and, with ``--locked``, the one-lock path
it replaced on PostgreSQL, in the same run, with CPU per record; the trail is first
seeded with ``--history`` records (benchmarks/audit.py's ``long_trail``, which also
measures verification and proofs). Prints a table and writes JSON to
benchmarks/results/.

    .venv/bin/python benchmarks/audit_appends.py [--quick] [--locked] [--writers 1,4,8]
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

from audit import long_trail  # benchmarks/ is the script's folder
from soak_services import POSTGRES_URL, PostgresSchema  # benchmarks/ is the script's folder

from federator.audit.trail import AuditTrail
from federator.signing import BrokerKeys
from federator.storage import make_engine, upgrade

RESULTS = Path(__file__).resolve().parent / "results"


WRITER = """
import os, resource, sys, time
from pathlib import Path
from sqlalchemy import text
from federator.audit.trail import AuditTrail
from federator.signing import BrokerKeys
from federator.storage import make_engine
url, count, name, key, go = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
pairs = sys.argv[6] == "pairs"
app = f"fedbench-{name}-{os.getpid()}"
if url.startswith("postgresql"):
    url += ("&" if "?" in url else "?") + "application_name=" + app
engine = make_engine(url)
trail = AuditTrail(engine, checkpoint_every=1000)
trail.sign_with(BrokerKeys.load(Path(key), "federator", create=False))
if sys.argv[7] == "locked":  # the path before the queue: one lock over the whole append
    trail.append = lambda event, **fields: trail._append(event, fields, None)
while not Path(go).exists():
    time.sleep(0.01)
start = resource.getrusage(resource.RUSAGE_SELF)
for i in range(count):
    trail.append("lookup.requested", lookup_id=f"{name}-{i}", actor_id=name,
                 actor_organisation="Leeds", basis={"type": "consent"}, scope="targeted",
                 child_pseudonym=f"{i:064x}", authorities=["leeds-cs", "york-health"])
    if pairs:  # as a lookup writes them: requested, then completed
        trail.append("lookup.completed", lookup_id=f"{name}-{i}", actor_id=name,
                     actor_organisation="Leeds", child_pseudonym=f"{i:064x}", complete=True,
                     outcomes=[{"id": a, "outcome": "no_match", "latency_ms": 40,
                                "professionals": 0} for a in ("leeds-cs", "york-health")])
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
print(own.ru_utime + own.ru_stime - start.ru_utime - start.ru_stime, server)
"""


def appends(url: str, writers: int, per_writer: int, workdir: Path, mode: str,
            path: str = "queued", history: int = 0) -> tuple[float, float]:
    """Records per second: ``requested`` appends only ``lookup.requested`` (each
    flushed to disk before the next); ``pairs`` appends what a lookup writes,
    ``lookup.requested`` then ``lookup.completed`` (federator.audit.trail.RELAXED).
    The trail first holds ``history`` records of 500 other practitioners, and the
    database's statistics of them (as autovacuum keeps them): on an empty,
    never analysed table PostgreSQL plans the flag history's queries as if it
    would stay empty, and they walk every record of the event. Also returns the
    CPU milliseconds per record, writers (from the start signal) and their
    PostgreSQL backends (connecting included) together: on a shared machine the rate follows the CPU
    left over, this does not."""
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
                               str(key), str(go), mode, path], stdout=subprocess.PIPE)
             for i in range(writers)]
    time.sleep(1.5)  # let the interpreters start before the clock does
    started = time.perf_counter()
    go.touch()
    client = server = 0.0
    for p in procs:
        out, _ = p.communicate()
        if p.returncode != 0:
            raise RuntimeError("a writer failed")
        mine, theirs = (float(x) for x in out.split())
        client, server = client + mine, server + theirs
    elapsed = time.perf_counter() - started
    records = writers * per_writer * (2 if mode == "pairs" else 1)
    verdict = AuditTrail(engine).verify()
    engine.dispose()
    if not verdict.ok or verdict.count != before + records:
        raise RuntimeError(f"trail broken after the run: {verdict}")
    return records / elapsed, (client + server) * 1000 / records


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
    parser.add_argument("--writers", default="1,4,8",
                        help="writer process counts, comma-separated")
    args = parser.parse_args()
    counts = [int(w) for w in args.writers.split(",")]
    per_writer = 100 if args.quick else 500
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
            paths = ["queued", "locked"] if name == "postgresql" and args.locked else \
                ["queued" if name == "postgresql" else "locked"]
            for mode, writers, path in [(m, w, p) for m in ("requested", "pairs")
                                        for w in counts for p in paths]:
                url, schema = make()
                try:
                    rate, cpu = appends(url, writers, per_writer, work, mode, path,
                                        args.history)
                finally:
                    if schema is not None:
                        schema.drop()
                measure = "appends/s" if mode == "requested" else "appends/s (lookups)"
                records = writers * per_writer * (2 if mode == "pairs" else 1)
                rows.append({"measure": measure, "database": name, "path": path,
                             "writers": writers, "records": records, "value": round(rate, 1),
                             "cpu_ms": round(cpu, 2)})
                print(f"{name:11} {path:6} {measure}, {writers} writer(s): {rate:8.1f}/s "
                      f"({cpu:.2f} CPU ms each)", flush=True)
    print()
    print(f"{'measure':20} {'database':11} {'path':6} {'writers':>7} {'records':>9} "
          f"{'value':>12} {'CPU ms':>7}")
    for r in rows:
        print(f"{r['measure']:20} {r['database']:11} {r['path']:6} {r['writers'] or '':>7} "
              f"{r['records']:>9} {r['value']:>12,.1f} {r.get('cpu_ms', ''):>7}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"audit-appends-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps({"quick": args.quick, "cpus": os.cpu_count(),
                               "load": os.getloadavg(), "results": rows},
                              indent=2))
    print(f"\nwritten {out}")


if __name__ == "__main__":
    main()
