"""Two versions of the broker measured side by side, interleaved, so that both
meet the same load on a shared machine (issue 18).

    .venv/bin/python benchmarks/fanout_ab.py OTHER_CHECKOUT [--lookups 100] [--rounds 3]

Starts the adapters of ``benchmarks/fanout.py`` once and two brokers under
gunicorn against them: this checkout's ("this") and the one at OTHER_CHECKOUT
("other", e.g. ``git archive main | tar -x -C /tmp/main``), each with its trail
in a PostgreSQL schema of its own (``FEDERATOR_TEST_POSTGRES_URL``) and its own
Redis prefix. Then, alternately one lookup each: the broker overhead (latency
beyond the slowest adapter) at fan-out 1, 10 and 50; and for throughput at
fan-out 10, short blocks in turn (bare client, this, other, ...), each broker's
rate taken as a share of the bare rate of the blocks around it. Prints a table
and writes benchmarks/results/fanout_ab.json.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
import urllib3
from fanout import (
    FANOUTS,
    RESULTS,
    Stores,
    bare_throughput,
    broker_throughput,
    free_port,
    group,
    lookup_body,
    start_adapters,
    workers_cpu_s,
)


def start(root: Path, work: Path, ports: list[int], idp_url: str, stores: dict[str, str]
          ) -> tuple[subprocess.Popen[bytes], str]:
    """``benchmarks/fanout.py``'s broker, from the checkout at ``root``."""
    from federator.demo.files import toml_array_of_tables

    work.mkdir(parents=True, exist_ok=True)
    entries = [{"id": f"bench-{i}", "name": f"Bench {i}", "code": f"E99{i:06d}",
                "coverage": [group(n) for n in FANOUTS if i < n],
                "protocol": "federator-lookup/1",
                "url": f"http://127.0.0.1:{p}", "timeout_ms": 10000, "contact": "-"}
               for i, p in enumerate(ports)]
    (work / "registry.toml").write_text(toml_array_of_tables("endpoint", entries))
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(root),
           "FEDERATOR_ENV": "development", "FEDERATOR_INSTANCE_DIR": str(work / "instance"),
           "FEDERATOR_SECRET_KEY": secrets.token_urlsafe(48),
           "FEDERATOR_AUDIT_KEY": secrets.token_urlsafe(48),
           "FEDERATOR_OIDC_ISSUER": idp_url,
           "FEDERATOR_REGISTRY_SEED": str(work / "registry.toml"),
           "FEDERATOR_LOOKUPS_PER_MINUTE": "1000000", "FEDERATOR_LOOKUPS_PER_DAY": "10000000",
           "FEDERATOR_ORGANISATION_LOOKUPS_PER_MINUTE": "1000000",
           "FEDERATOR_ORGANISATION_LOOKUPS_PER_DAY": "10000000",
           "FEDERATOR_FANOUT_WORKERS": "160", "FEDERATOR_BROKER_ID": "federator-demo",
           "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "2",
           "GUNICORN_THREADS": "16", **stores}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    subprocess.run([sys.executable, "-c", "from federator import create_app; "
                    "create_app(migrate=True)"], env=env, check=True, cwd=root,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = (work / "gunicorn.log").open("wb")
    process = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "-c",
                                "config/gunicorn.conf.py", "wsgi:app"], env=env, cwd=root,
                               stderr=log)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if requests.get(f"{url}/healthz", timeout=1).ok:
                return process, url
        except requests.RequestException:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("a broker did not start:\n" + (work / "gunicorn.log").read_text())


def one(pool: urllib3.PoolManager, url: str, token: str, fanout: int) -> float:
    started = time.perf_counter()
    response = pool.request("POST", f"{url}/api/v1/lookups",
                            body=json.dumps(lookup_body(fanout)).encode(),
                            headers={"Authorization": f"Bearer {token}",
                                     "Content-Type": "application/json"})
    took = (time.perf_counter() - started) * 1000
    if response.status != 200:
        raise RuntimeError(f"lookup failed: {response.status} {response.data[:200]!r}")
    return took - max(a["latency_ms"] for a in json.loads(response.data)["authorities"])


def quantiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50_ms": round(statistics.median(ordered), 1),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("other", type=Path, help="the other checkout's root")
    parser.add_argument("--lookups", type=int, default=100, help="per broker and fan-out")
    parser.add_argument("--rounds", type=int, default=3, help="throughput blocks per broker")
    parser.add_argument("--seconds", type=float, default=4.0, help="per throughput block")
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    roots = {"this": Path(__file__).resolve().parent.parent, "other": args.other.resolve()}

    from federator.demo.idp import create_idp_app, fetch_token
    from federator.demo.serving import bind

    with tempfile.TemporaryDirectory() as tmp, Stores("postgresql") as a, \
            Stores("postgresql") as b:
        work = Path(tmp)
        adapters, ports = start_adapters(max(FANOUTS), 50, work)
        idp = bind(0)
        idp.start(create_idp_app(idp.url))
        brokers: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
        try:
            for (name, root), stores in zip(roots.items(), (a, b), strict=True):
                brokers[name] = start(root, work / name, ports, idp.url, stores.env)
            token = fetch_token(idp.url, "practitioner")
            pools = {name: urllib3.PoolManager(maxsize=1, retries=False, timeout=30)
                     for name in brokers}
            overhead: dict[str, dict[str, Any]] = {name: {} for name in brokers}
            for fanout in (1, 10, 50):
                samples: dict[str, list[float]] = {name: [] for name in brokers}
                cpu: dict[str, float] = {}
                for i in range(args.lookups + 5):
                    if i == 5:  # after the warm-up
                        cpu = {n: workers_cpu_s(p.pid) for n, (p, _) in brokers.items()}
                    for name, (_, url) in (brokers.items() if i % 2 else
                                           reversed(brokers.items())):
                        took = one(pools[name], url, token, fanout)
                        if i >= 5:
                            samples[name].append(took)
                for name, (process, _) in brokers.items():
                    overhead[name][str(fanout)] = {
                        **quantiles(samples[name]),
                        "cpu_ms_per_lookup": round(
                            (workers_cpu_s(process.pid) - cpu[name]) * 1000 / args.lookups, 2)}
            blocks: dict[str, list[float]] = {"bare": [], **{n: [] for n in brokers}}
            shares: dict[str, list[float]] = {n: [] for n in brokers}
            for _ in range(args.rounds):
                for name, (_, url) in brokers.items():
                    before = bare_throughput(ports, args.clients * 10, args.seconds)
                    rate = broker_throughput(url, token, args.clients, args.seconds)
                    after = bare_throughput(ports, args.clients * 10, args.seconds)
                    blocks["bare"] += [before, after]
                    blocks[name].append(rate)
                    shares[name].append(rate * 10 / ((before + after) / 2))
        finally:
            for process, _ in brokers.values():
                process.terminate()
                process.wait(timeout=30)
            adapters.terminate()
            adapters.wait(timeout=10)
            idp.stop()
    results = {"settings": {"lookups": args.lookups, "rounds": args.rounds,
                            "seconds": args.seconds, "clients": args.clients,
                            "adapter_delay_ms": 50, "other": str(roots["other"]),
                            "cpus": os.cpu_count()},
               "overhead": overhead,
               "throughput": {name: {"lookups_per_s": [round(r, 1) for r in blocks[name]],
                                     "share_of_bare": [round(s, 3) for s in shares[name]],
                                     "median_share": round(statistics.median(shares[name]), 3)}
                              for name in brokers},
               "bare_per_s": [round(r, 1) for r in blocks["bare"]]}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "fanout_ab.json").write_text(json.dumps(results, indent=2))
    print("\nbroker overhead (latency - slowest adapter), ms, lookups interleaved")
    print(f"{'fan-out':>8} {'broker':>6} {'p50':>7} {'p99':>7} {'CPU/lookup':>11}")
    for fanout in ("1", "10", "50"):
        for name in brokers:
            row = overhead[name][fanout]
            print(f"{fanout:>8} {name:>6} {row['p50_ms']:>7} {row['p99_ms']:>7} "
                  f"{row['cpu_ms_per_lookup']:>11}")
    for name in brokers:
        t = results["throughput"][name]
        print(f"throughput at fan-out 10, {name}: {t['lookups_per_s']} lookups/s, "
              f"{[f'{s:.0%}' for s in t['share_of_bare']]} of the bare client's rate "
              f"(median {t['median_share']:.0%})")


if __name__ == "__main__":
    main()
