"""A debug hook for benchmarks only (``soak.py --memwatch``): in every process
forked from the one that imports this (gunicorn's workers), a thread writes,
every ``MEMWATCH_EVERY`` seconds, the Python heap as tracemalloc sees
it (started by ``PYTHONTRACEMALLOC``), the lines whose memory grew since the
first sample, and the object types whose counts grew, to
``$MEMWATCH_DIR/memwatch-<pid>.jsonl``. Imported by Python at startup
because the soak puts this directory on ``PYTHONPATH``; nothing in the broker
knows of it."""

from __future__ import annotations

import gc
import json
import os
import sys
import threading
import time
import tracemalloc
from collections import Counter
from typing import Any

DIRECTORY = os.environ.get("MEMWATCH_DIR")
EVERY = float(os.environ.get("MEMWATCH_EVERY", "30"))


def _types() -> Counter[str]:
    return Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.get_objects())


def _rss_kib() -> dict[str, int]:
    with open(f"/proc/{os.getpid()}/status") as fh:
        return {line.split(":")[0]: int(line.split()[1]) for line in fh
                if line.startswith(("VmRSS:", "RssAnon:"))}


def _by_line(snapshot: tracemalloc.Snapshot) -> dict[str, tuple[int, int]]:
    """Bytes and blocks per source line (kept instead of the snapshot, whose raw
    traces would be a million Python tuples of their own)."""
    return {f"{s.traceback[0].filename}:{s.traceback[0].lineno}": (s.size, s.count)
            for s in snapshot.statistics("lineno")}


def _watch() -> None:
    path = os.path.join(str(DIRECTORY), f"memwatch-{os.getpid()}.jsonl")
    first: dict[str, tuple[int, int]] | None = None
    first_types: Counter[str] | None = None
    while True:
        time.sleep(EVERY)
        gc.collect()
        entry: dict[str, Any] = {"at": time.time(), "blocks": sys.getallocatedblocks(),
                                 "threads": threading.active_count(), **_rss_kib()}
        types = _types()
        if tracemalloc.is_tracing():
            lines = _by_line(tracemalloc.take_snapshot())
            entry["traced_kib"] = tracemalloc.get_traced_memory()[0] // 1024
            if first is None:
                first = lines
            else:
                grew = sorted(((size - first.get(where, (0, 0))[0],
                                count - first.get(where, (0, 0))[1], where)
                               for where, (size, count) in lines.items()), reverse=True)
                entry["grew"] = [{"kib": round(size / 1024, 1), "count": count, "where": where}
                                 for size, count, where in grew[:15]]
            del lines
        if first_types is None:
            first_types = types
        else:
            entry["types_grew"] = [(name, n - first_types.get(name, 0))
                                   for name, n in types.most_common()
                                   if n - first_types.get(name, 0) > 50][:15]
        del types
        with open(path, "a") as fh:
            fh.write(json.dumps(entry) + "\n")


def _start() -> None:
    threading.Thread(target=_watch, name="memwatch", daemon=True).start()


if DIRECTORY:
    os.register_at_fork(after_in_child=_start)
