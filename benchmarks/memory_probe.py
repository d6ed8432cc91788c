"""Where does a broker's memory go under load? Measured at N, 2N ... kN lookups.

    .venv/bin/python benchmarks/memory_probe.py [--lookups 300] [--factor 5] [--trace]

One process: a synthetic federation (kits in threads, PostgreSQL schema of its
own, Redis under a prefix of its own, Prometheus in multiprocess mode as under
gunicorn) and the broker app driven through Flask test clients by a few
threads with the soak's mixed lookups (some kits failing). After a warm-up,
after every N lookups (and a full garbage collection): RSS and its anonymous
part, glibc's bytes in use and held free (``mallinfo2``, all arenas), and
Python's allocated blocks. A leak shows as memory *in use* (Python blocks or
malloc'd bytes) rising with lookups; allocator warm-up as RSS rising while
what is in use stays flat. ``--trace`` adds tracemalloc snapshots at N and kN
with the lines that grew (slow: about 3x). Prints a table and writes
``benchmarks/results/memory_probe[_traced].json``.
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import json
import logging
import os
import random
import shutil
import sys
import tempfile
import threading
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"

from soak_services import PostgresSchema, chaos  # noqa: E402

REDIS_URL = os.environ.get("FEDERATOR_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def _mallinfo() -> dict[str, float]:
    """glibc's view over all its arenas: bytes handed out (in use, incl. large
    mmap'd blocks) and bytes held free inside arenas (fragmentation, warm-up)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _Mallinfo2
        info = libc.mallinfo2()
    except (OSError, AttributeError):
        return {}
    return {"malloc_in_use_mib": round((info.uordblks + info.hblkhd) / 2**20, 1),
            "malloc_free_mib": round(info.fordblks / 2**20, 1)}


def measure(label: str, done: int) -> dict[str, Any]:
    status = dict(line.split(":", 1) for line in
                  Path("/proc/self/status").read_text().splitlines() if ":" in line)
    point: dict[str, Any] = {
        "at": label, "lookups": done,
        "rss_mib": round(int(status["VmRSS"].split()[0]) / 1024, 1),
        "anon_mib": round(int(status["RssAnon"].split()[0]) / 1024, 1),
        **_mallinfo(), "py_blocks": sys.getallocatedblocks(),
        "threads": threading.active_count()}
    if tracemalloc.is_tracing():
        point["traced_kib"] = round(tracemalloc.get_traced_memory()[0] / 1024, 1)
    return point


def drive(fed: Any, count: int, clients: int, seed: int) -> dict[str, int]:
    """``count`` lookups over ``clients`` threads; status counts."""
    statuses: dict[str, int] = {}
    lock = threading.Lock()
    left = [count]
    token = fed.token("practitioner")

    def work(n: int) -> None:
        rng = random.Random(seed * 100 + n)
        http = fed.app.test_client()
        while True:
            with lock:
                if left[0] <= 0:
                    return
                left[0] -= 1
            child = rng.choice(fed.world.children).identity()
            if rng.random() < 0.3:
                child.pop("nhs_number", None)
            body = {"child": child, "purpose": "Soak: assessment under section 17",
                    "basis": {"type": "statutory", "power": "children-act-1989-s17",
                              "reference": "SOAK-1"},
                    "include_past": rng.random() < 0.5}
            response = http.post("/api/v1/lookups", json=body,
                                 headers={"Authorization": f"Bearer {token}"})
            with lock:
                statuses[str(response.status_code)] = statuses.get(
                    str(response.status_code), 0) + 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses


def snapshot() -> tracemalloc.Snapshot:
    gc.collect()
    return tracemalloc.take_snapshot().filter_traces((
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap*>"),
    ))


def growth(older: tracemalloc.Snapshot, newer: tracemalloc.Snapshot, top: int
           ) -> list[dict[str, Any]]:
    out = []
    for stat in newer.compare_to(older, "traceback")[:top]:
        frames = [f"{f.filename.replace(str(ROOT) + '/', '')}:{f.lineno}"
                  for f in stat.traceback][:6]
        out.append({"kib": round(stat.size_diff / 1024, 1), "count": stat.count_diff,
                    "where": frames})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lookups", type=int, default=300, help="N")
    parser.add_argument("--factor", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--fail-rate", type=float, default=0.1)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--trace", action="store_true",
                        help="tracemalloc snapshots at N and factor*N (slow)")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    work = Path(tempfile.mkdtemp(prefix="federator-memprobe-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(work / "metrics")
    (work / "metrics").mkdir()
    from federator.config import Settings
    from federator.demo.federation import start_federation

    schema = PostgresSchema.create("memprobe")
    prefix = f"memprobe-{uuid.uuid4().hex[:8]}:"
    rng = random.Random(2026)
    fed = start_federation(work / "fed", base=Settings(
        database_url=schema.url,
        redis_url=REDIS_URL, redis_prefix=prefix, lookups_per_minute=10**6,
        lookups_per_day=10**8, organisation_lookups_per_minute=10**6,
        organisation_lookups_per_day=10**8, deadline_default_ms=1000), notify="off")
    for served in fed.kit_threads:
        served.server.app = chaos(served.server.app, random.Random(rng.random()),
                                  args.fail_rate, hang_s=1.2)
    points: list[dict[str, Any]] = []
    snaps: list[tracemalloc.Snapshot] = []
    statuses: dict[str, int] = {}
    try:
        drive(fed, args.warmup, args.clients, 1)
        if args.trace:
            tracemalloc.start(12)
        done = 0
        for step in range(args.factor + 1):
            target = step * args.lookups
            for k, v in drive(fed, target - done, args.clients, 2 + done).items():
                statuses[k] = statuses.get(k, 0) + v
            done = target
            if args.trace and step in (1, args.factor):
                snaps.append(snapshot())
            gc.collect()
            points.append(measure(f"{step}N" if step else "warm", done))
            print("  " + "  ".join(f"{k} {v}" for k, v in points[-1].items()), flush=True)
        tracemalloc.stop()
    finally:
        fed.stop()
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
        client.close()
        schema.drop()
        shutil.rmtree(work, ignore_errors=True)
    later = growth(snaps[0], snaps[1], args.top) if len(snaps) == 2 else []
    result = {"lookups": args.lookups, "factor": args.factor, "clients": args.clients,
              "fail_rate": args.fail_rate, "traced": args.trace, "statuses": statuses,
              "points": points, f"growth_N_to_{args.factor}N": later}
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "memory_probe_traced.json" if args.trace else "memory_probe.json"
    (RESULTS / name).write_text(json.dumps(result, indent=2))
    print(f"\nstatuses {statuses}")
    first, last = points[1], points[-1]
    span = max(1, last["lookups"] - first["lookups"])
    for key in ("rss_mib", "anon_mib", "malloc_in_use_mib", "malloc_free_mib",
                "py_blocks", "traced_kib"):
        if key in first:
            print(f"  {key} N -> {args.factor}N: {first[key]} -> {last[key]} "
                  f"({(last[key] - first[key]) * 1000 / span:+.3f} per 1,000 lookups)")
    if later:
        print(f"\ntop growth N -> {args.factor}N (tracemalloc, by traceback):")
        for item in later:
            print(f"  {item['kib']:>9} KiB {item['count']:>7} blocks  "
                  f"{' <- '.join(item['where'][:3])}")
    print(f"\nwritten to {RESULTS / name}")


if __name__ == "__main__":
    main()
