"""The adapter kit's SQL source: what one lookup costs in reading and indexing
the authority's records, at the first lookup and at later ones while the rows
are unchanged, against a SQLite file of generated children (test data).

    .venv/bin/python benchmarks/kit_sql_source.py [--sizes 1000 50000]

Prints a table (CPU milliseconds per ``records()`` call) and writes JSON to
benchmarks/results/kit_sql_source.json.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from pathlib import Path

from adapters.kit.match_quality import generate_population
from adapters.kit.sources import SqlSource

RESULTS = Path(__file__).resolve().parent / "results"
QUERY = """SELECT ref AS child_ref, nhs AS nhs_number, given AS given_name,
  family AS family_name, dob AS date_of_birth, postcode, 0 AS shielded,
  NULL AS shield_notice, NULL AS professional_name, NULL AS role, NULL AS service,
  NULL AS sensitive, NULL AS organisation, NULL AS team, NULL AS phone, NULL AS email,
  NULL AS registration_number, NULL AS "from", NULL AS "to" FROM children"""


def database(path: Path, size: int) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE children (ref, nhs, given, family, dob, postcode)")
        db.executemany("INSERT INTO children VALUES (?, ?, ?, ?, ?, ?)", [
            (r.child_ref, r.nhs_number, r.given_name, r.family_name,
             r.date_of_birth.isoformat() if r.date_of_birth else None, r.postcode)
            for r in generate_population(size)])
    db.close()


def cpu_ms(call: object) -> float:
    start = time.process_time()
    call()  # type: ignore[operator]
    return (time.process_time() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 50000])
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            path = Path(tmp) / f"k{size}.sqlite"
            database(path, size)
            source = SqlSource(f"sqlite:///{path}", QUERY)
            try:
                first = cpu_ms(lambda s=source: s.records().match_index)
                later = sorted(cpu_ms(lambda s=source: s.records().match_index)
                               for _ in range(5))[2]
            finally:
                source.close()
            rows.append({"records": size, "first_ms": round(first, 1),
                         "unchanged_ms": round(later, 1),
                         "ratio": round(first / later, 1) if later else None})
    print(f"{'records':>9} {'first lookup ms':>16} {'later lookups ms':>17} {'ratio':>6}")
    for r in rows:
        print(f"{r['records']:>9} {r['first_ms']:>16} {r['unchanged_ms']:>17} {r['ratio']:>6}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "kit_sql_source.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
