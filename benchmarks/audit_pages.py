"""What the trail status on every auditor page costs (federator.web.audit_status),
against a full walk of the same trail. SQLite file; 200,000 records (``--quick``:
20,000). Prints a table and writes JSON to benchmarks/results/audit_pages.json.

    .venv/bin/python benchmarks/audit_pages.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from audit import RESULTS, long_trail

from federator.state import SharedState
from federator.web import audit_status


def timed(fn, repeat: int) -> float:
    """Median milliseconds of ``repeat`` calls."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    n = 20_000 if parser.parse_args().quick else 200_000
    with tempfile.TemporaryDirectory() as tmp:
        trail = long_trail(f"sqlite:///{Path(tmp) / 'bench.sqlite'}", n)
        state = SharedState(None)
        start = time.perf_counter()
        audit_status.verify_all(trail, state)
        full_ms = (time.perf_counter() - start) * 1000
        audit_status.EVERY_S = 0.0
        nothing_new = timed(lambda: audit_status.trail_status(trail, state), 200)

        grown = []
        for _ in range(5):
            for i in range(100):
                trail.append("auth.signed_in", actor_id=f"u{i}", actor_role="auditor")
            grown.append(timed(lambda: audit_status.trail_status(trail, state), 1))
        grow_ms = statistics.median(grown)
        trail.engine.dispose()
    rows = [("full walk (button, CLI)", full_ms),
            ("page view, nothing new", nothing_new),
            ("page view after 100 new records", grow_ms)]
    print(f"trail of {n:,} records (SQLite)")
    print(f"{'what':<36}{'ms':>12}")
    for name, ms in rows:
        print(f"{name:<36}{ms:>12.2f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "audit_pages.json").write_text(json.dumps(
        {"records": n, "results": {name: round(ms, 3) for name, ms in rows}}, indent=2))


if __name__ == "__main__":
    main()
