"""Fan-out benchmark: the broker under gunicorn against N adapters on loopback.

    .venv/bin/python benchmarks/fanout.py [--quick]

Prints a table and writes benchmarks/results/fanout.json:
- broker overhead (lookup latency minus the slowest adapter's latency, as the
  broker measured it) p50/p99 at fan-out 1, 10, 50 and 150, and the stricter
  lookup latency minus the delay the adapters were set to take;
- throughput at fan-out 10 with concurrent clients (lookups/s, outbound
  requests/s) against a bare pooled urllib3 client making the same requests
  to the same servers, in the same run, with the same concurrency;
- the broker workers' memory (RSS) after the first block of lookups and after
  ten times as many.
The adapters (one asyncio process, N ports) answer ``no_match`` after a delay.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import nhs_number
import requests
import urllib3
from soak_services import PostgresSchema

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
FANOUTS = (1, 10, 50, 150)


# -- adapters ---------------------------------------------------------------------

async def _serve(count: int, delay_s: float, ports_file: Path) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                found = re.search(rb"(?i)content-length:\s*(\d+)", head)
                raw = await reader.readexactly(int(found.group(1)) if found else 0)
                lookup_id = json.loads(raw)["lookup_id"]
                await asyncio.sleep(delay_s)
                out = json.dumps({"lookup_id": lookup_id, "status": "no_match"}).encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(out), out))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    servers = [await asyncio.start_server(handle, "127.0.0.1", 0) for _ in range(count)]
    ports = [s.sockets[0].getsockname()[1] for s in servers]
    ports_file.write_text(json.dumps(ports))
    await asyncio.Event().wait()


def start_adapters(count: int, delay_ms: int, work: Path) -> tuple[subprocess.Popen[bytes],
                                                                    list[int]]:
    ports_file = work / "ports.json"
    process = subprocess.Popen([sys.executable, __file__, "serve", str(count), str(delay_ms),
                                str(ports_file)])
    while not ports_file.exists() or not ports_file.read_text():
        time.sleep(0.05)
    return process, json.loads(ports_file.read_text())


# -- broker -----------------------------------------------------------------------

def group(fanout: int) -> str:
    """An area code covered by the first ``fanout`` endpoints."""
    return f"E98{fanout:06d}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_broker(work: Path, ports: list[int], idp_url: str, workers: int, threads: int,
                 stores: dict[str, str], app: str = "wsgi:app"
                 ) -> tuple[subprocess.Popen[bytes], str]:
    from federator.demo.files import toml_array_of_tables

    entries = [{"id": f"bench-{i}", "name": f"Bench {i}", "code": f"E99{i:06d}",
                "coverage": [group(n) for n in FANOUTS if i < n],
                "protocol": "federator-lookup/1",
                "url": f"http://127.0.0.1:{p}", "timeout_ms": 10000, "contact": "-"}
               for i, p in enumerate(ports)]
    seed = work / "registry.toml"
    seed.write_text(toml_array_of_tables("endpoint", entries))
    port = free_port()
    env = {**os.environ,
           "FEDERATOR_ENV": "development", "FEDERATOR_INSTANCE_DIR": str(work / "instance"),
           "FEDERATOR_SECRET_KEY": secrets.token_urlsafe(48),
           "FEDERATOR_AUDIT_KEY": secrets.token_urlsafe(48),
           "FEDERATOR_OIDC_ISSUER": idp_url, "FEDERATOR_REGISTRY_SEED": str(seed),
           "FEDERATOR_LOOKUPS_PER_MINUTE": "1000000", "FEDERATOR_LOOKUPS_PER_DAY": "10000000",
           # one practitioner's organisation too (its ceiling, issue 19, is 300 a minute)
           "FEDERATOR_ORGANISATION_LOOKUPS_PER_MINUTE": "1000000",
           "FEDERATOR_ORGANISATION_LOOKUPS_PER_DAY": "10000000",
           "FEDERATOR_FANOUT_WORKERS": "160", "FEDERATOR_BROKER_ID": "federator-demo",
           "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": str(workers),
           "GUNICORN_THREADS": str(threads), **stores}
    bin_dir = Path(sys.executable).parent
    # Migrate and seed once, before the workers start (two workers seeding an empty
    # registry at the same moment race on the insert).
    subprocess.run([sys.executable, "-c", "from federator import create_app; "
                    "create_app(migrate=True)"], env=env, check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = (work / "gunicorn.log").open("wb")
    process = subprocess.Popen([str(bin_dir / "gunicorn"), "-c", "config/gunicorn.conf.py",
                                app], env=env, cwd=ROOT, stderr=log)
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if requests.get(f"{url}/healthz", timeout=1).ok:
                return process, url
        except requests.RequestException:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the broker did not start:\n" + (work / "gunicorn.log").read_text())


def workers_cpu_s(master: int) -> float:
    """CPU seconds (user + system) the gunicorn workers have used so far."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split():
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def worker_rss_mib(master: int) -> float:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    total = 0
    for pid in children:
        status = Path(f"/proc/{pid}/status").read_text()
        total += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    return total / 1024


class Stores:
    """Where the broker keeps its trail and shared state for this run: SQLite and
    in-process state (the defaults), or PostgreSQL (a schema of its own, dropped
    afterwards) and Redis (a key prefix of its own, deleted afterwards)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.env: dict[str, str] = {}
        self.schema: PostgresSchema | None = None

    def __enter__(self) -> Stores:
        if self.kind == "postgresql":
            self.schema = PostgresSchema.create("bench")
            self.env = {
                "FEDERATOR_DATABASE_URL": self.schema.url,
                "FEDERATOR_REDIS_URL": os.environ.get("FEDERATOR_TEST_REDIS_URL",
                                                      "redis://127.0.0.1:6379/15"),
                "FEDERATOR_REDIS_PREFIX": f"{self.schema.name}:"}
        return self

    def __exit__(self, *exc: object) -> None:
        if self.schema is None:
            return
        import redis

        self.schema.drop()
        with redis.Redis.from_url(self.env["FEDERATOR_REDIS_URL"]) as client:
            for key in client.scan_iter(f"{self.schema.name}:*"):
                client.delete(key)


# -- driving ----------------------------------------------------------------------

def nhs_numbers() -> Iterator[str]:
    """Valid NHS numbers in the 999 test range, in order."""
    for stem in itertools.count(999000000):
        check = nhs_number.calculate_checksum(str(stem))
        if check is not None and check != 10:
            yield f"{stem}{check}"


#: Each lookup is about another child, as in real use: the audit's flag queries
#: look at the child's and the practitioner's history, and one child looked up
#: thousands of times would measure that history instead of the broker.
CHILDREN = nhs_numbers()
CHILDREN_LOCK = threading.Lock()  # a generator is not safe to share between threads


def lookup_body(fanout: int) -> dict[str, Any]:
    with CHILDREN_LOCK:
        nhs_number = next(CHILDREN)
    return {"child": {"nhs_number": nhs_number, "postcodes": []},
            "areas": [group(fanout)],
            "purpose": "Benchmark: finding services already involved",
            "basis": {"type": "consent", "given_by": "parent",
                      "given_on": (date.today() - timedelta(days=1)).isoformat(),
                      "reference": "BENCH"},
            "deadline_ms": 10000}


def overhead(url: str, token: str, fanout: int, count: int, master: int,
             delay_ms: int) -> dict[str, float]:
    """Sequential lookups: latency beyond the slowest adapter, and the broker
    workers' CPU per lookup (steadier than latency on a shared machine)."""
    # A lean client (urllib3, requests' own engine, as the bare ceiling uses): the
    # client's own Python is not the broker's overhead (requests.Session adds about
    # 0.5 ms a call on this machine).
    pool = urllib3.PoolManager(maxsize=1, retries=False, timeout=30)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    samples: list[float] = []
    strict: list[float] = []
    for i in range(count + 5):
        body = json.dumps(lookup_body(fanout)).encode()
        started = time.perf_counter()
        response = pool.request("POST", f"{url}/api/v1/lookups", body=body, headers=headers)
        took = (time.perf_counter() - started) * 1000
        if response.status != 200:
            raise RuntimeError(f"lookup failed: {response.status} {response.data[:300]!r}")
        answer = json.loads(response.data)
        outcomes = {a["outcome"] for a in answer["authorities"]}
        if outcomes != {"no_match"} or len(answer["authorities"]) != fanout:
            raise RuntimeError(f"unexpected outcomes {outcomes}")
        if i == 4:
            cpu = workers_cpu_s(master)
        if i >= 5:  # warm-up: connections, first signatures
            samples.append(took - max(a["latency_ms"] for a in answer["authorities"]))
            # Stricter: against the delay the adapters were told to take. It also
            # charges the broker with the adapters' own process (one asyncio process
            # for all of them) and loopback; the first hides time a call waited on the
            # broker's busy loop inside the latency the broker measured.
            strict.append(took - delay_ms)
    cpu_ms = (workers_cpu_s(master) - cpu) * 1000 / count
    samples.sort()
    strict.sort()
    return {"p50_ms": round(statistics.median(samples), 1),
            "p99_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.99))], 1),
            "p50_vs_delay_ms": round(statistics.median(strict), 1),
            "p99_vs_delay_ms": round(strict[min(len(strict) - 1, int(len(strict) * 0.99))], 1),
            "cpu_ms_per_lookup": round(cpu_ms, 2), "lookups": count}


def run_for(seconds: float, clients: int, work: Any) -> int:
    done = [0] * clients
    stop = time.monotonic() + seconds

    def loop(i: int) -> None:
        state = work()
        while time.monotonic() < stop:
            state()
            done[i] += 1

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done)


def broker_throughput(url: str, token: str, clients: int, seconds: float) -> float:
    def work() -> Any:
        session = requests.Session()
        return lambda: session.post(f"{url}/api/v1/lookups", json=lookup_body(10), timeout=30,
                                    headers={"Authorization": f"Bearer {token}"}).raise_for_status()

    return run_for(seconds, clients, work) / seconds


def bare_throughput(ports: list[int], clients: int, seconds: float) -> float:
    pool = urllib3.PoolManager(num_pools=64, maxsize=clients, retries=False)
    payload = json.dumps({"lookup_id": "bench"}).encode()

    def work() -> Any:
        counter = iter(range(10**9))
        return lambda: pool.request("POST", f"http://127.0.0.1:{ports[next(counter) % 10]}"
                                    "/lookup", body=payload,
                                    headers={"Content-Type": "application/json"}).data

    return run_for(seconds, clients, work) / seconds


def drive(url: str, token: str, count: int, clients: int) -> None:
    share = iter(range(count))
    lock = threading.Lock()

    def loop() -> None:
        session = requests.Session()
        while True:
            with lock:
                if next(share, None) is None:
                    return
            session.post(f"{url}/api/v1/lookups", json=lookup_body(10), timeout=30,
                         headers={"Authorization": f"Bearer {token}"}).raise_for_status()

    threads = [threading.Thread(target=loop) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (about a minute)")
    parser.add_argument("--delay-ms", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--profile", metavar="FILE",
                        help="record the broker workers with py-spy during the throughput "
                             "run (collapsed stacks to FILE; needs py-spy installed)")
    parser.add_argument("--without-trail", action="store_true",
                        help="measurement only: the audit trail's append a no-op "
                             "(benchmarks/wsgi_without_trail.py), to show what the rest of "
                             "the broker costs")
    parser.add_argument("--only-throughput", action="store_true",
                        help="skip the overhead and memory blocks")
    parser.add_argument("--stores", choices=("sqlite", "postgresql"), default="sqlite",
                        help="postgresql: the audit trail in a fresh schema of "
                             "FEDERATOR_TEST_POSTGRES_URL and shared state in the Redis of "
                             "FEDERATOR_TEST_REDIS_URL, as a deployment has them")
    args = parser.parse_args()
    count = 30 if args.quick else 200
    seconds = 5.0 if args.quick else 20.0
    memory_block = 200 if args.quick else 1000

    from federator.demo.idp import create_idp_app, fetch_token
    from federator.demo.serving import bind

    with tempfile.TemporaryDirectory() as tmp, Stores(args.stores) as stores:
        work = Path(tmp)
        adapters, ports = start_adapters(max(FANOUTS), args.delay_ms, work)
        idp = bind(0)
        idp.start(create_idp_app(idp.url))
        broker: subprocess.Popen[bytes] | None = None
        try:
            broker, url = start_broker(work, ports, idp.url, args.workers, args.threads,
                                       stores.env, app="benchmarks.wsgi_without_trail:app"
                                       if args.without_trail else "wsgi:app")
            token = fetch_token(idp.url, "practitioner")
            results: dict[str, Any] = {
                "settings": {"stores": args.stores, "adapter_delay_ms": args.delay_ms,
                             "gunicorn_workers": args.workers,
                             "gunicorn_threads": args.threads, "clients": args.clients,
                             "quick": args.quick, "cpus": os.cpu_count(),
                             "without_trail": args.without_trail},
                "overhead": {} if args.only_throughput else
                {str(n): overhead(url, token, n, count, broker.pid, args.delay_ms)
                 for n in FANOUTS},
            }
            cpu = time.process_time()
            bare = bare_throughput(ports, args.clients * 10, seconds)
            bare_cpu_ms = (time.process_time() - cpu) * 1000 / (bare * seconds)
            spy = None
            if args.profile:
                spy = subprocess.Popen(
                    [str(Path(sys.executable).parent / "py-spy"), "record", "--pid",
                     str(broker.pid), "--subprocesses", "--format", "raw", "--rate", "250", "--gil",
                     "--duration", str(int(seconds)), "--output", args.profile, "--nonblocking"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            cpu = workers_cpu_s(broker.pid)
            lookups = broker_throughput(url, token, args.clients, seconds)
            if spy is not None:
                spy.wait(timeout=60)
            lookup_cpu_ms = (workers_cpu_s(broker.pid) - cpu) * 1000 / (lookups * seconds)
            results["throughput"] = {
                "fanout": 10, "lookups_per_s": round(lookups, 1),
                "outbound_per_s": round(lookups * 10, 1),
                "bare_urllib3_per_s": round(bare, 1),
                "ratio": round(lookups * 10 / bare, 3),
                # CPU, less at the mercy of other load on the machine than rates are:
                # the broker's per lookup, the bare client's per request
                "broker_cpu_ms_per_lookup": round(lookup_cpu_ms, 2),
                "bare_cpu_ms_per_request": round(bare_cpu_ms, 3),
                "cpu_ratio": round(10 * bare_cpu_ms / lookup_cpu_ms, 3)}
            if args.only_throughput:
                memory_block = 0
            # the lookups the workers had already served (overhead and throughput runs)
            before = (0 if args.only_throughput else (count + 5) * len(FANOUTS)) + \
                round(lookups * seconds)
            drive(url, token, memory_block, args.clients)
            first = worker_rss_mib(broker.pid)
            drive(url, token, memory_block * 9, args.clients)
            after = worker_rss_mib(broker.pid)
            results["memory"] = {"lookups_before": before,
                                 "lookups_first": memory_block,
                                 "lookups_after": memory_block * 10,
                                 "rss_mib_first": round(first, 1),
                                 "rss_mib_after": round(after, 1),
                                 "growth_mib": round(after - first, 1)}
        finally:
            if broker is not None:
                broker.terminate()
                broker.wait(timeout=30)
            adapters.terminate()
            adapters.wait(timeout=10)
            idp.stop()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "fanout.json").write_text(json.dumps(results, indent=2))
    print_table(results)


def print_table(results: dict[str, Any]) -> None:
    print("\nbroker overhead (lookup latency - slowest adapter), ms")
    print(f"{'fan-out':>8} {'p50':>8} {'p99':>8} {'CPU/lookup':>11}   against the set delay: "
          f"{'p50':>6} {'p99':>6}")
    for n, row in results["overhead"].items():
        cpu = row.get('cpu_ms_per_lookup', '-')
        print(f"{n:>8} {row['p50_ms']:>8} {row['p99_ms']:>8} {cpu:>11}   {'':>22} "
              f"{row.get('p50_vs_delay_ms', '-'):>6} {row.get('p99_vs_delay_ms', '-'):>6}")
    t = results["throughput"]
    print(f"\nthroughput at fan-out 10: {t['lookups_per_s']} lookups/s, "
          f"{t['outbound_per_s']} outbound/s; bare urllib3 {t['bare_urllib3_per_s']}/s "
          f"({t['ratio']:.0%} of the ceiling)")
    if "broker_cpu_ms_per_lookup" in t:
        print(f"CPU: broker {t['broker_cpu_ms_per_lookup']} ms per lookup of 10; bare client "
              f"{t['bare_cpu_ms_per_request']} ms per request (bare/broker "
              f"{t['cpu_ratio']:.0%})")
    m = results["memory"]
    print(f"memory (gunicorn workers' RSS): {m['rss_mib_first']} MiB after "
          f"{m['lookups_first']} lookups, {m['rss_mib_after']} MiB after {m['lookups_after']}"
          f" (after {m.get('lookups_before', 0)} lookups of the runs above)")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "serve":
        asyncio.run(_serve(int(sys.argv[2]), int(sys.argv[3]) / 1000, Path(sys.argv[4])))
    else:
        main()
