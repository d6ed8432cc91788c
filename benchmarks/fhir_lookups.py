"""FHIR R4 lookups: calls per lookup with and without ``_include`` support, and ms
per lookup, against real servers on loopback.

    .venv/bin/python benchmarks/fhir_lookups.py [--lookups 40] [--teams 10] [--members 3]
        [--no-medplum]

Servers:

- ``project``: the project's FHIR test server (``tests/support/fhir_server.py``,
  Flask, one thread a request), with ``_include`` on and off;
- ``medplum``: Medplum's FHIR router and in-memory repository (npm
  ``@medplum/fhir-router``, ``tests/support/medplum.py``), which supports no
  ``_include``; skipped when Node.js or its ``npm ci`` is missing.

Children:

- ``small``: the test data (2 CareTeams, 1 EpisodeOfCare, 4 practitioners, a
  role, an organisation);
- ``large``: ``--teams`` CareTeams of ``--members`` practitioners each, one
  EpisodeOfCare, an organisation.

Each at the client's page size (``_count`` 50) and at ``_count`` 1 (a server
that pages by one: the worst case). Calls are the server's count of FHIR
requests during each lookup (token requests are not counted: the token is
cached after the first lookup, which is not timed). ms per lookup
is wall time, median and 95th percentile, one lookup at a time; the machine's
two cores are shared, so compare rows, not runs.
Writes JSON to benchmarks/results/fhir_lookups.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# this file is fhir.py: its own folder first on the path would hide the fhir package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
RESULTS = ROOT / "benchmarks" / "results"
LARGE_NHS = "9990001073"

from support import medplum  # noqa: E402
from support.fhir_server import FhirServer, payload, resources  # noqa: E402

from adapters.base import Target  # noqa: E402
from adapters.fhir_r4 import NHS_NUMBER_SYSTEM, FhirR4Client  # noqa: E402


def large_child(teams: int, members: int) -> list[dict[str, Any]]:
    """One child with ``teams`` CareTeams of ``members`` practitioners each."""
    out: list[dict[str, Any]] = [{
        "resourceType": "Patient", "id": "pat-large",
        "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": LARGE_NHS}],
        "name": [{"family": "Large", "given": ["Child"]}], "birthDate": "2014-02-02"}]
    for t in range(teams):
        ids = [f"lp-{t}-{m}" for m in range(members)]
        out += [{"resourceType": "Practitioner", "id": pid,
                 "name": [{"family": f"Worker{pid}", "given": ["Sam"]}],
                 "telecom": [{"system": "email", "value": f"{pid}@example.nhs.uk"}]}
                for pid in ids]
        out.append({"resourceType": "CareTeam", "id": f"lt-{t}", "status": "active",
                    "name": f"Team {t}", "subject": {"reference": "Patient/pat-large"},
                    "managingOrganization": [{"reference": "Organization/org-1"}],
                    "participant": [{"member": {"reference": f"Practitioner/{pid}"}}
                                    for pid in ids]})
    out.append({"resourceType": "EpisodeOfCare", "id": "le-1", "status": "active",
                "patient": {"reference": "Patient/pat-large"},
                "managingOrganization": {"reference": "Organization/org-1"},
                "careManager": {"reference": "Practitioner/lp-0-0"}})
    return out


def one_lookup(client: FhirR4Client, target: Target, asked: dict[str, Any]
               ) -> Callable[[], dict[str, Any]]:
    return lambda: client.lookup(target, {**asked, "lookup_id": "L-bench"},
                                 deadline=time.monotonic() + 10)


def measure(lookup: Callable[[], dict[str, Any]], lookups: int,
            server_count: Callable[[], int]) -> dict[str, Any]:
    """Calls per lookup (the server's count of FHIR requests), professionals, ms."""
    lookup()  # the token, the connection pool
    timings, calls, people = [], set(), set()
    for _ in range(lookups):
        before = server_count()
        started = time.perf_counter()
        answer = lookup()
        timings.append((time.perf_counter() - started) * 1000)
        calls.add(server_count() - before)
        people.add(len(answer["professionals"]))
        assert answer["status"] == "match" and "partial" not in answer, answer.get("partial")
    timings.sort()
    return {"calls_per_lookup": sorted(calls)[0] if len(calls) == 1 else sorted(calls),
            "professionals": sorted(people)[0] if len(people) == 1 else sorted(people),
            "ms_median": round(statistics.median(timings), 2),
            "ms_p95": round(timings[int(len(timings) * 0.95) - 1], 2)}


@contextmanager
def project_server() -> Iterator[FhirServer]:
    server = FhirServer()
    try:
        yield server
    finally:
        server.close()


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    children = {"small": payload(), "large": payload(nhs_number=LARGE_NHS, postcodes=[])}

    def row(server: str, include: bool, page: int, child: str, result: dict[str, Any]
            ) -> None:
        rows.append({"server": server, "include": include, "count": page, "child": child,
                     **result})
        print(f"{server:8} {'yes' if include else 'no':8} {page:>6} {child:6} "
              f"{result['calls_per_lookup']!s:>6} {result['professionals']!s:>6} "
              f"{result['ms_median']:>9.2f} {result['ms_p95']:>9.2f}", flush=True)

    print(f"{'server':8} {'_include':8} {'_count':>6} {'child':6} {'calls':>6} {'people':>6} "
          f"{'ms median':>9} {'ms p95':>9}")
    with project_server() as server:
        server.add(*large_child(args.teams, args.members))
        server.page_size = 1000
        for include in (True, False):
            server.include = include
            for page in (50, 1):
                client = FhirR4Client(user_agent="federator-bench", page_size=page,
                                      max_pages=args.teams + 5, max_reads=500)
                try:
                    for child, asked in children.items():
                        row("project", include, page, child, measure(
                            one_lookup(client, server.target(), asked), args.lookups,
                            lambda: server.requests))
                finally:
                    client.close()
    if args.no_medplum:
        return rows
    try:
        mp = medplum.start()
    except medplum.NotAvailable as e:
        print(f"medplum: skipped ({e})")
        return rows
    try:
        for resource in [*resources(), *large_child(args.teams, args.members)]:
            mp.put(resource)
        target = Target(id="medplum", url=mp.base, timeout_ms=10_000)
        for page in (50, 1):
            client = FhirR4Client(user_agent="federator-bench", page_size=page,
                                  max_pages=args.teams + 5, max_reads=500)
            try:
                for child, asked in children.items():
                    row("medplum", False, page, child, measure(
                        one_lookup(client, target, asked), args.lookups, mp.requests))
            finally:
                client.close()
    finally:
        medplum.stop(mp)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--lookups", type=int, default=40)
    parser.add_argument("--teams", type=int, default=10)
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--no-medplum", action="store_true")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line a request
    rows = run(args)
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = {"lookups": args.lookups, "large_child": {"teams": args.teams,
                                                       "members": args.members},
              "rows": rows}
    (RESULTS / "fhir_lookups.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {RESULTS / 'fhir_lookups.json'}")


if __name__ == "__main__":
    main()
