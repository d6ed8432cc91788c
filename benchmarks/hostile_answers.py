"""What one hostile authority's answer costs the broker, with the caps and without.

    .venv/bin/python benchmarks/hostile_answers.py [--quick]

Each measurement runs in a fresh process (so its peak memory is its own):

- ``api``: 25,000 professionals in one 1 MiB answer, through the broker's answer
  path: ``parse_answer``, the outcome, ``answer_of`` (merge), the API's
  ``LookupResultSchema`` and JSON encoding.
- ``page``: the same answer through ``results_view`` and the results page's
  template (the real app's Jinja environment), as the web form renders it.
- ``header``: one authority streams an endless header (up to 128 MiB, or the
  5 s deadline) while 200 calls to a well-behaved authority run on the same event
  loop (``adapters.aio``): their median and slowest latency, and the process's
  peak memory.

"capped" is the code as it is; "uncapped" lifts the caps in the same code
(``max_professionals``, the merged list's 1,000, the 16 KiB header cap), which is
how the broker behaved before them. CPU is the process's user+system seconds for
the work; memory is the process's peak RSS (``ru_maxrss``). Prints a table and
writes ``benchmarks/results/hostile_answers.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"
UNCAPPED = 10**9


def hostile_body(lookup_id: str, count: int = 25_000) -> bytes:
    people = [{"name": f"P{i:05d}", "phone": "111"} for i in range(count)]
    body = json.dumps({"lookup_id": lookup_id, "status": "match", "confidence": 1.0,
                       "professionals": people}, separators=(",", ":")).encode()
    assert len(body) <= 1024 * 1024, len(body)
    return body


def _answer(capped: bool) -> dict[str, Any]:
    from adapters.protocol import parse_answer
    from federator.lookup import journey
    from federator.lookup.fanout import Outcome
    from federator.lookup.routing import Endpoint

    if not capped:
        journey.MAX_LISTED = UNCAPPED
    body = hostile_body("L1")
    parsed = parse_answer(body, "L1", **({} if capped else {"max_professionals": UNCAPPED}))
    endpoint = Endpoint("aaa-attacker", "Attacker", "E0", ("E0",), "federator-lookup/1",
                        "http://x", 5000, "", "active")
    from concurrent.futures import Future

    from federator.lookup.fanout import _outcome
    done: Future[Any] = Future()
    done.set_result(parsed)
    outcome: Outcome = _outcome(endpoint, done, time.monotonic())
    return journey.answer_of("L1", [outcome], {"E0"})


def measure_api(capped: bool) -> dict[str, Any]:
    from federator.lookup.schemas import LookupResultSchema

    start = time.process_time()
    answer = _answer(capped)
    text = json.dumps(LookupResultSchema().dump(answer))
    return {"cpu_s": time.process_time() - start, "listed": len(answer["professionals"]),
            "bytes_out": len(text)}


def measure_page(capped: bool) -> dict[str, Any]:
    from flask import render_template

    from federator import create_app
    from federator.config import Settings
    from federator.web.results import results_view

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Settings(env="development", instance_dir=Path(tmp)).checked(),
                         migrate=True)
        with app.test_request_context("/lookups/new"):
            start = time.process_time()
            answer = _answer(capped)
            html = render_template(
                "web/results.html", view=results_view(answer), csrf_token=lambda: "t",
                asked={"nhs_number": "9434765919", "name": "", "date_of_birth": None,
                       "postcodes": "", "purpose": "p", "basis_type": "consent",
                       "include_past": True},
                title="t", resend=[], follows=None, can_retry=False, possible=[],
                principal=None, nav=[], sign_out_url=None, service_name="Federator",
                cspNonce=None)
            cpu = time.process_time() - start
        app.extensions["federator"].engine.dispose()
    return {"cpu_s": cpu, "listed": len(answer["professionals"]), "bytes_out": len(html)}


def _serve(kind: str) -> tuple[socket.socket, str]:
    sock = socket.create_server(("127.0.0.1", 0), backlog=512)

    def one(conn: socket.socket) -> None:
        with conn:
            try:
                while True:
                    data = b""
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(65536)
                        if not chunk:
                            return
                        data += chunk
                    if kind == "endless":
                        conn.sendall(b"HTTP/1.1 200 OK\r\nX-Endless: ")
                        for _ in range(2048):
                            conn.sendall(b"a" * 65536)
                        return
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
            except OSError:
                return

    def accept() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            threading.Thread(target=one, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


def measure_header(capped: bool, calls: int = 200) -> dict[str, Any]:
    from adapters.aio import AsyncOutboundClient
    from adapters.base import AdapterFailure, Target

    _, bad = _serve("endless")
    _, good = _serve("ok")
    client = AsyncOutboundClient(max_connections=256, pool_size=64,
                                 **({} if capped else {"max_header_bytes": 2**40}))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    async def run() -> tuple[str, list[float]]:
        deadline = time.monotonic() + 5
        bad_call = asyncio.ensure_future(client.post(
            Target("bad", bad, 5000), "/lookup", b"{}", {}, deadline=deadline))
        await asyncio.sleep(0.05)  # the endless header is under way

        async def timed(i: int) -> float:
            started = time.monotonic()
            await client.post(Target(f"g{i % 8}", good, 5000), "/lookup", b"{}", {},
                              deadline=time.monotonic() + 5)
            return (time.monotonic() - started) * 1000

        latencies = []
        for _ in range(calls // 20):  # 20 at a time, as lookups come
            latencies += await asyncio.gather(*(timed(i) for i in range(20)))
        try:
            await bad_call
            outcome = "answered"
        except AdapterFailure as e:
            outcome = e.detail
        await client.aclose()
        return outcome, latencies

    outcome, latencies = asyncio.run(run())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"endless_header": outcome, "p50_ms": statistics.median(latencies),
            "max_ms": max(latencies), "rss_growth_mb": (peak - base) / 1024}


def child(kind: str, capped: bool) -> None:
    result = {"api": measure_api, "page": measure_page, "header": measure_header}[kind](capped)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", nargs=2, metavar=("KIND", "CAPPED"))
    parser.add_argument("--quick", action="store_true", help="skip the uncapped page")
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1] == "capped")
        return
    rows: list[dict[str, Any]] = []
    for kind in ("api", "page", "header"):
        for mode in ("capped", "uncapped"):
            if args.quick and kind == "page" and mode == "uncapped":
                continue
            out = subprocess.run([sys.executable, __file__, "--child", kind, mode],
                                 capture_output=True, text=True, check=True, cwd=ROOT)
            rows.append({"measure": kind, "mode": mode,
                         **json.loads(out.stdout.strip().splitlines()[-1])})
    print(f"{'measure':8} {'mode':9} {'cpu s':>7} {'listed':>7} {'peak MB':>8} "
          f"{'p50 ms':>7} {'max ms':>7} {'grew MB':>8}  endless header")
    for r in rows:
        print(f"{r['measure']:8} {r['mode']:9} {r.get('cpu_s', float('nan')):7.2f} "
              f"{r.get('listed', ''):>7} {r['peak_rss_mb']:8.1f} "
              f"{r.get('p50_ms', float('nan')):7.1f} {r.get('max_ms', float('nan')):7.1f} "
              f"{r.get('rss_growth_mb', float('nan')):8.1f}  {r.get('endless_header', '')}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "hostile_answers.json").write_text(json.dumps(
        {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "rows": rows}, indent=2)
        + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
