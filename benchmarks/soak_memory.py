"""The soak's memory record: a broker's workers' RSS against lookups answered,
so that flat and creeping can be told apart (``benchmarks/soak.py``).

A creep that is allocator warm-up (glibc gives each of gunicorn's threads an
arena; arenas and fragmentation grow for a while) flattens: the second half of
a run adds much less per 1,000 lookups than the first. A leak does not.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

MEMWATCH = Path(__file__).resolve().parent / "memwatch"

FIELDS = {"VmRSS:": "rss", "RssAnon:": "anon", "RssFile:": "file"}


def rss_by_pid(pids: Sequence[int]) -> dict[int, dict[str, float]]:
    """Resident memory in MiB of each live process in ``pids``: all of it (``rss``),
    the heap and stacks (``anon``), and mapped files (``file``: shared libraries'
    pages as code paths are first used, Prometheus' multiprocess files)."""
    out: dict[int, dict[str, float]] = {}
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        values = {FIELDS[line.split()[0]]: round(int(line.split()[1]) / 1024, 1)
                  for line in status.splitlines() if line.split()[:1] and
                  line.split()[0] in FIELDS}
        threads = [line.split()[1] for line in status.splitlines()
                   if line.startswith("Threads:")]
        if "rss" in values:
            out[pid] = {**values, "threads": float(threads[0]) if threads else 0.0}
    return out


def sample(at_s: float, lookups: int, workers: dict[int, dict[str, float]]) -> dict[str, Any]:
    def total(key: str) -> float:
        return round(sum(w.get(key, 0.0) for w in workers.values()), 1)

    return {"at_s": round(at_s), "lookups": lookups, "A_mib": total("rss"),
            "A_anon_mib": total("anon"), "A_file_mib": total("file"),
            "A_threads": int(total("threads")),
            "A_workers": {str(pid): w for pid, w in sorted(workers.items())}}


def _per_1000(first: dict[str, Any], last: dict[str, Any], key: str = "A_mib"
              ) -> float | None:
    done = last["lookups"] - first["lookups"]
    if done <= 0 or first.get(key) is None or last.get(key) is None:
        return None
    return round((last[key] - first[key]) * 1000 / done, 3)


def summary(samples: Sequence[dict[str, Any]], rows: int = 8) -> dict[str, Any]:
    """Evenly spaced points, and MiB per 1,000 lookups in each half of the run
    (from the first sample, taken after warm-up has begun). Samples taken after
    a worker was replaced (its pid changed) are not compared with earlier ones."""
    usable = [s for s in samples if s["A_mib"]]
    if len(usable) < 2:
        return {"points": list(usable), "first_half_mib_per_1000": None,
                "second_half_mib_per_1000": None, "workers_replaced": False}
    replaced = usable[0]["A_workers"].keys() != usable[-1]["A_workers"].keys()
    last = len(usable) - 1
    points = [usable[i] for i in sorted({round(k * last / (rows - 1)) for k in range(rows)})]
    middle = usable[len(usable) // 2]
    keys = ("at_s", "lookups", "A_mib", "A_anon_mib", "A_file_mib", "A_threads")
    return {"points": [{k: s.get(k) for k in keys} for s in points],
            "first_half_mib_per_1000": _per_1000(usable[0], middle),
            "second_half_mib_per_1000": _per_1000(middle, usable[-1]),
            "anon_first_half_mib_per_1000": _per_1000(usable[0], middle, "A_anon_mib"),
            "anon_second_half_mib_per_1000": _per_1000(middle, usable[-1], "A_anon_mib"),
            "workers_replaced": replaced}


def print_summary(result: dict[str, Any]) -> None:
    print("\n  broker A memory (both workers' RSS) against lookups answered:")
    print(f"  {'at (s)':>8} {'lookups':>9} {'RSS MiB':>9} {'anon':>7} {'files':>7} "
          f"{'threads':>7}")
    for p in result["points"]:
        print(f"  {p['at_s']:>8} {p['lookups']:>9} {p['A_mib']:>9} {p['A_anon_mib']:>7} "
              f"{p['A_file_mib']:>7} {p.get('A_threads', ''):>7}")
    first, second = result["first_half_mib_per_1000"], result["second_half_mib_per_1000"]
    print(f"  MiB per 1,000 lookups: first half {first}, second half {second}"
          f" (anon {result.get('anon_first_half_mib_per_1000')}, "
          f"{result.get('anon_second_half_mib_per_1000')})"
          + ("  (a worker was replaced: not comparable)" if result["workers_replaced"] else ""))


def watch(env: dict[str, str], directory: Path, every_s: int = 30) -> None:
    """Run a broker's workers under ``memwatch`` (tracemalloc, one frame)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = env.get("PYTHONPATH")
    env.update(PYTHONPATH=f"{MEMWATCH}:{path}" if path else str(MEMWATCH),
               PYTHONTRACEMALLOC="1", MEMWATCH_DIR=str(directory),
               MEMWATCH_EVERY=str(every_s))


def keep_watch(directory: Path, results: Path) -> None:
    """Copy the workers' records to ``results`` and print what grew most in each."""
    results.mkdir(parents=True, exist_ok=True)
    for path in sorted(directory.glob("memwatch-*.jsonl")):
        shutil.copy(path, results / path.name)
        entries = [json.loads(line) for line in path.read_text().splitlines() if line]
        if len(entries) < 2:
            continue
        first, last = entries[0], entries[-1]
        print(f"\n  {path.stem}: traced {first.get('traced_kib')} -> {last.get('traced_kib')} "
              f"KiB, Python blocks {first['blocks']} -> {last['blocks']}, RssAnon "
              f"{first.get('RssAnon', 0) // 1024} -> {last.get('RssAnon', 0) // 1024} MiB")
        for grew in last.get("grew", [])[:8]:
            print(f"    {grew['kib']:>8} KiB {grew['count']:>7}  {grew['where']}")
        for name, count in last.get("types_grew", [])[:5]:
            print(f"    +{count} {name}")
