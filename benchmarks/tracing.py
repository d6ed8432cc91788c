"""What tracing costs per lookup: the broker's fan-out with tracing off and on.

    PYTHONPATH=. .venv/bin/python benchmarks/tracing.py [--lookups 300] [--quick]

One process runs the broker's real fan-out (``FanOut`` on its event loop, the
``federator-lookup/1`` client, a lookup span around each run as the lookup
service makes it); a second process serves N adapters on loopback that answer
``no_match`` at once, and an OTLP/HTTP sink that answers 200 to every export.
Modes: ``off`` (no SDK: the default), ``on`` (SDK, spans made and batched
to the sink by OTLP/HTTP protobuf, as configured in production). For fan-out
1, 10 and 50: the lookup's wall time p50/p99 and the broker process's CPU
time per lookup (the adapters' and the sink's CPU are the other process's).
Prints a table and writes benchmarks/results/tracing.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
FANOUTS = (1, 10, 50)


async def _serve(count: int) -> None:
    async def adapter(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                found = re.search(rb"(?i)content-length:\s*(\d+)", head)
                raw = await reader.readexactly(int(found.group(1)) if found else 0)
                if head.startswith(b"POST /v1/traces"):
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n"
                                 b"Content-Length: 0\r\n\r\n")
                    continue
                lookup_id = json.loads(raw)["lookup_id"]
                out = json.dumps({"lookup_id": lookup_id, "status": "no_match"}).encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: " + str(len(out)).encode() + b"\r\n\r\n" + out)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    servers = [await asyncio.start_server(adapter, "127.0.0.1", 0) for _ in range(count + 1)]
    ports = [s.sockets[0].getsockname()[1] for s in servers]
    print(json.dumps(ports), flush=True)
    await asyncio.Event().wait()


def _one(fanout: Any, client: Any, tracing: Any, endpoints: list[Any], i: int) -> float:
    """One lookup's fan-out, with its span as the lookup service makes it; ms."""
    from adapters.base import Target
    from federator.lookup.fanout import Calls
    from federator.lookup.tracing import lookup_span, note_outcomes

    n = len(endpoints)
    payload = {"lookup_id": f"01JBENCH{n:03d}{i:012d}", "child": {"given_name": "A"}}

    def aask(e: Any, d: float) -> Any:
        return client.alookup(Target(e.id, e.url, e.timeout_ms), payload, deadline=d)

    started = time.perf_counter()
    span = lookup_span(tracing, payload["lookup_id"], n, 3000)
    outcomes = list(fanout.run(endpoints, Calls(ask=lambda e, d: {}, aask=aask),
                               deadline=time.monotonic() + 3,
                               **({"parent": span} if span is not None else {})))
    if span is not None:
        note_outcomes(span, [o.status for o in outcomes])
        span.end()
    assert all(o.status == "no_match" for o in outcomes), outcomes
    return (time.perf_counter() - started) * 1000


def _run(ports: list[int], mode: str, lookups: int) -> list[dict[str, Any]]:
    from adapters.lookup_v1 import LookupV1Client
    from adapters.tracing import OFF, make_tracing
    from federator.lookup.fanout import FanOut
    from federator.lookup.routing import Endpoint

    sink, adapters = ports[0], ports[1:]
    tracing = OFF if mode == "off" else make_tracing(
        "federator-bench", endpoint=f"http://127.0.0.1:{sink}", environ={})
    fanout = FanOut(4, tracing=tracing)
    client = LookupV1Client(sign=lambda body, audience: "bench-token")
    rows = []
    for n in FANOUTS:
        endpoints = [Endpoint(f"a{i}", f"A{i}", "X", ("X",), "federator-lookup/1",
                              f"http://127.0.0.1:{port}", 3000, "", "active")
                     for i, port in enumerate(adapters[:n])]
        for i in range(20):  # warm: connections open, caches full
            _one(fanout, client, tracing, endpoints, i)
        cpu0 = time.process_time()
        walls = [_one(fanout, client, tracing, endpoints, i) for i in range(lookups)]
        cpu_ms = (time.process_time() - cpu0) * 1000 / lookups
        q = statistics.quantiles(walls, n=100)
        rows.append({"mode": mode, "fanout": n, "lookups": lookups,
                     "wall_p50_ms": round(statistics.median(walls), 3),
                     "wall_p99_ms": round(q[98], 3), "cpu_ms_per_lookup": round(cpu_ms, 3)})
    tracing.flush()
    fanout.shutdown()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lookups", type=int, default=300)
    parser.add_argument("--quick", action="store_true", help="100 lookups per row")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=("off", "on"), help=argparse.SUPPRESS)
    parser.add_argument("--ports", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.serve))
        return
    lookups = 100 if args.quick else args.lookups
    if args.mode:  # one mode, in its own process: the SDK never loaded for "off"
        print(json.dumps(_run(json.loads(args.ports), args.mode, lookups)))
        return
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(max(FANOUTS))],
                              stdout=subprocess.PIPE, text=True)
    try:
        ports = server.stdout.readline().strip() if server.stdout else "[]"
        rows = []
        for mode in ("off", "on", "off", "on"):  # twice each, interleaved
            out = subprocess.run([sys.executable, __file__, "--mode", mode, "--ports", ports,
                                  "--lookups", str(lookups)], capture_output=True, text=True,
                                 check=True, cwd=ROOT)
            rows += json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        server.terminate()
        server.wait(10)
    summary = []
    for n in FANOUTS:
        best = {m: min((r for r in rows if r["mode"] == m and r["fanout"] == n),
                       key=lambda r: r["cpu_ms_per_lookup"]) for m in ("off", "on")}
        summary.append({
            "fanout": n,
            **{f"{m}_{k}": best[m][k] for m in ("off", "on")
               for k in ("wall_p50_ms", "wall_p99_ms", "cpu_ms_per_lookup")},
            "cpu_overhead_ms": round(best["on"]["cpu_ms_per_lookup"]
                                     - best["off"]["cpu_ms_per_lookup"], 3),
            "cpu_overhead_per_call_us": round((best["on"]["cpu_ms_per_lookup"]
                                               - best["off"]["cpu_ms_per_lookup"])
                                              * 1000 / (n + 1), 1)})
    print(f"{'fanout':>6} | {'off p50':>8} {'on p50':>8} | {'off p99':>8} {'on p99':>8} | "
          f"{'off cpu':>8} {'on cpu':>8} | {'+cpu/lookup':>11} {'+cpu/span':>9}")
    for s in summary:
        print(f"{s['fanout']:>6} | {s['off_wall_p50_ms']:>6.2f}ms {s['on_wall_p50_ms']:>6.2f}ms | "
              f"{s['off_wall_p99_ms']:>6.2f}ms {s['on_wall_p99_ms']:>6.2f}ms | "
              f"{s['off_cpu_ms_per_lookup']:>6.2f}ms {s['on_cpu_ms_per_lookup']:>6.2f}ms | "
              f"{s['cpu_overhead_ms']:>9.3f}ms {s['cpu_overhead_per_call_us']:>7.1f}us")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "tracing.json").write_text(json.dumps(
        {"lookups_per_row": lookups, "python": sys.version.split()[0], "summary": summary,
         "runs": rows}, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS / 'tracing.json'}")


if __name__ == "__main__":
    main()
