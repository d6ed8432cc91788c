"""The auditor's casework reads (``federator.audit.case_queries``) on a SQLite
trail of 100,000 lookups (200,000 records, one in ten flagged, about 1,000
lookups a day): ``.venv/bin/python benchmarks/audit_casework.py [--lookups N]``.
The records are written directly, without hashing: this measures reading."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert

from federator.audit import case_queries as cq
from federator.audit.tables import audit_flags
from federator.storage import audit_records, make_engine, upgrade

START = datetime(2026, 9, 1, tzinfo=UTC)


def fill(engine: Engine, lookups: int) -> date:
    """``lookups`` requested and completed records, 80 s apart; the last day."""
    rows: list[dict[str, Any]] = []
    flags: list[dict[str, Any]] = []
    for n in range(lookups):
        at = (START + timedelta(seconds=n * 80)).isoformat(timespec="milliseconds")
        for k, event in enumerate(("lookup.requested", "lookup.completed")):
            seq = 2 * n + 1 + k
            body: dict[str, Any] = {
                "seq": seq, "at": at, "event": event, "lookup_id": f"L{n}",
                "actor_id": f"p{n % 300}", "actor_organisation": f"Org {n % 20}",
                "purpose": "Assessment", "basis_type": "consent",
                "basis": {"type": "consent", "reference": "R"}, "areas": ["E08000035"],
                "authorities": ["a", "b"]}
            if k:
                body["outcomes"] = [{"id": "a", "outcome": "match"},
                                    {"id": "b", "outcome": "no_match"}]
            elif n % 10 == 0:
                body["flags"] = [{"flag": "out_of_hours", "reason": "r"}]
                flags.append({"seq": seq, "flag": "out_of_hours"})
            rows.append({"seq": seq, "at": at, "event": event, "lookup_id": f"L{n}",
                         "actor_id": body["actor_id"], "basis_type": "consent",
                         "actor_organisation": body["actor_organisation"],
                         "body": json.dumps(body), "prev_hash": f"{seq:064d}",
                         "hash": f"{seq + 1:064d}"})
    with engine.begin() as conn:
        for i in range(0, len(rows), 20000):
            conn.execute(insert(audit_records), rows[i:i + 20000])
        conn.execute(insert(audit_flags), flags)
    return (START + timedelta(seconds=lookups * 80)).date()


def timed(name: str, call: Callable[[], Any]) -> Any:
    began = time.perf_counter()
    out = call()
    print(f"{name}: {(time.perf_counter() - began) * 1000:.0f} ms")
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lookups", type=int, default=100_000)
    lookups = parser.parse_args().lookups
    engine = make_engine(f"sqlite:///{Path(tempfile.mkdtemp()) / 'casework.sqlite'}")
    upgrade(engine)
    end = fill(engine, lookups)
    month = end - timedelta(days=29)
    everything = cq.LookupFilter()
    for _ in range(2):
        timed("lookups page, newest 25", lambda: cq.lookup_page(engine, everything, limit=25))
        timed("lookups page, flagged only",
              lambda: cq.lookup_page(engine, cq.LookupFilter(flagged=True), limit=25))
        timed("lookups page, one practitioner",
              lambda: cq.lookup_page(engine, cq.LookupFilter(actor="p7"), limit=25))
        cases: list[int] = timed("queue: every flagged case",
                                 lambda: cq.flagged_cases(engine, everything))
        timed("queue: 25 rows", lambda c=cases: cq.rows_at(engine, c[:25]))  # type: ignore[misc]
        timed("overview: 30 days", lambda: cq.activity(engine, month, end))
        timed("practitioner: 30 days", lambda: cq.activity(engine, month, end, actor="p7"))
    engine.dispose()


if __name__ == "__main__":
    main()
