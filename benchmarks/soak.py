"""Soak: mixed lookups for a long time while things break.

    .venv/bin/python benchmarks/soak.py [--minutes 30] [--clients 4]
    .venv/bin/python benchmarks/soak.py --minutes 5 --kill-every 0 --redis-every 0  # quiet

Two brokers (``federator serve``, gunicorn, two workers each) on one
PostgreSQL schema and a Redis server of the soak's own (a spare loopback port;
the machine's shared Redis is never touched), a synthetic federation whose
adapter kits fail at random (HTTP 500, or no answer before the deadline).
Meanwhile broker B is killed (a worker, or the whole server, with SIGKILL) and
restarted, and the Redis server is stopped and started again. Broker A is
never touched: its workers' memory is sampled to show whether it stays flat.

Reports lookups answered, deadline overruns (answered later than the
deadline plus one second), audit records written against lookups accepted
(every answered lookup must have its ``lookup.requested`` and
``lookup.completed``; lookups cut off by a kill are counted apart), whether
the trail verifies, and broker A's memory against lookups answered at several
points, with MiB per 1,000 lookups in each half of the run (flat or creeping:
``soak_memory``), and for each Redis restart how soon lookups worked again
after Redis answered and how many were refused after it did (``soak_redis``).
``--kill-every 0`` / ``--redis-every 0`` turn the breakage off; ``--redis-relay``
puts a relay between the brokers and Redis that keeps their pooled connections
open over a restart (dead, as with Redis on another host). Prints a table and
writes ``benchmarks/results/soak.json``.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import soak_memory  # noqa: E402
import soak_redis  # noqa: E402
from soak_services import PostgresSchema, RedisServer, Relay, chaos, free_port, tidy  # noqa: E402

from federator.config import Settings  # noqa: E402
from federator.demo.federation import Federation, start_federation  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
FEDERATOR = shutil.which("federator", path=str(Path(sys.executable).parent)) or "federator"
DEADLINE_MS = 2000


# -- things that break ------------------------------------------------------------------


@dataclass
class Broker:
    name: str
    env: dict[str, str]
    log: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as fh:
            self.process = subprocess.Popen(
                [FEDERATOR, "serve", "--bind", f"127.0.0.1:{self.port}", "--workers", "2",
                 "--allow-development"],  # the kits are http on loopback
                env=self.env, stdout=fh, stderr=fh, start_new_session=True)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                requests.get(f"{self.url}/healthz", timeout=2)
                return
            except requests.ConnectionError:
                time.sleep(0.2)
        raise RuntimeError(f"broker {self.name} did not start; see {self.log}")

    def workers(self) -> list[int]:
        if self.process is None:
            return []
        out = subprocess.run(["pgrep", "-P", str(self.process.pid)],  # noqa: S607
                             capture_output=True, text=True, check=False).stdout
        return [int(p) for p in out.split()]

    def kill_worker(self, rng: random.Random) -> None:
        workers = self.workers()
        if workers:
            os.kill(rng.choice(workers), signal.SIGKILL)

    def kill_all(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
            self.process = None

    def rss_mib(self) -> dict[int, float]:
        """Each worker's resident memory (MiB), by pid."""
        return soak_memory.rss_by_pid(self.workers())


def broker_env(fed: Federation, metrics_dir: Path) -> dict[str, str]:
    s = fed.settings
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FEDERATOR_", "PROMETHEUS_", "GUNICORN_"))}
    metrics_dir.mkdir(parents=True, exist_ok=True)
    env.update({
        "FEDERATOR_ENV": "development", "FEDERATOR_INSTANCE_DIR": str(fed.directory),
        "FEDERATOR_DATABASE_URL": str(s.database_url), "FEDERATOR_REDIS_URL": str(s.redis_url),
        "FEDERATOR_REDIS_PREFIX": s.redis_prefix, "FEDERATOR_SECRET_KEY": s.secret_key,
        "FEDERATOR_AUDIT_KEY": s.audit_key,
        "FEDERATOR_SIGNING_KEY_FILE": str(fed.directory / "signing-key.jwk.json"),
        "FEDERATOR_BROKER_ID": s.broker_id, "FEDERATOR_PUBLIC_URL": s.public_url,
        "FEDERATOR_OIDC_ISSUER": str(s.oidc_issuer), "FEDERATOR_OIDC_CLIENT_ID": s.oidc_client_id,
        "FEDERATOR_OIDC_CLIENT_SECRET": str(s.oidc_client_secret),
        "FEDERATOR_OIDC_AUDIENCE": s.oidc_audience,
        "FEDERATOR_LOOKUPS_PER_MINUTE": "100000", "FEDERATOR_LOOKUPS_PER_DAY": "10000000",
        "FEDERATOR_DEADLINE_DEFAULT_MS": str(DEADLINE_MS),
        "FEDERATOR_BREAKER_COOLDOWN_S": "5", "FEDERATOR_BREAKER_FAILURES": "8",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    })
    return env


# -- clients -----------------------------------------------------------------------------

@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: Counter[str] = field(default_factory=Counter)
    accepted: list[str] = field(default_factory=list)
    overruns: int = 0
    latencies: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    answers: list[soak_redis.Answer] = field(default_factory=list)  # monotonic times


def client(fed: Federation, brokers: list[Broker], tally: Tally, stop: threading.Event,
           seed: int) -> None:
    rng = random.Random(seed)
    token = fed.token("practitioner")
    token_at = time.monotonic()
    children = fed.world.children
    while not stop.is_set():
        if time.monotonic() - token_at > 240:
            token, token_at = fed.token("practitioner"), time.monotonic()
        broker = rng.choice(brokers)
        child = rng.choice(children).identity()
        if rng.random() < 0.3:
            child.pop("nhs_number", None)
        body = {"child": child, "purpose": "Soak: assessment under section 17",
                "basis": {"type": "statutory", "power": "children-act-1989-s17",
                          "reference": "SOAK-1"},
                "include_past": rng.random() < 0.5}
        started = time.monotonic()
        try:
            response = requests.post(f"{broker.url}/api/v1/lookups", json=body, timeout=30,
                                     headers={"Authorization": f"Bearer {token}"})
        except requests.RequestException as e:
            with tally.lock:
                tally.statuses[f"{broker.name}:{type(e).__name__}"] += 1
                tally.answers.append(soak_redis.Answer(started, time.monotonic(),
                                                       f"{broker.name}:{type(e).__name__}"))
            time.sleep(0.2)
            continue
        elapsed = time.monotonic() - started
        if response.status_code != 200:
            time.sleep(0.2)  # as a client honouring Retry-After would, roughly
        with tally.lock:
            tally.statuses[str(response.status_code)] += 1
            tally.answers.append(soak_redis.Answer(started, started + elapsed,
                                                   str(response.status_code)))
            if response.status_code == 200:
                answer = response.json()
                tally.accepted.append(answer["lookup_id"])
                tally.latencies.append(elapsed)
                tally.overruns += elapsed > DEADLINE_MS / 1000 + 1
                tally.outcomes.update(a["outcome"] for a in answer["authorities"])


# -- the run -----------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--fail-rate", type=float, default=0.1)
    parser.add_argument("--kill-every", type=float, default=45, help="seconds; 0: never")
    parser.add_argument("--redis-every", type=float, default=70, help="seconds; 0: never")
    parser.add_argument("--redis-relay", action="store_true",
                        help="brokers reach Redis through a relay that hides its restarts "
                             "from pooled connections (as Redis on another host)")
    parser.add_argument("--sample-every", type=float, default=15, help="memory, seconds")
    parser.add_argument("--memwatch", action="store_true",
                        help="broker A's workers under tracemalloc (benchmarks/memwatch)")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="federator-soak-"))
    schema = PostgresSchema.create("soak")
    redis_server = RedisServer(work)
    redis_server.start()
    atexit.register(lambda: tidy(redis_server, schema, work))  # on Ctrl-C too
    relay = Relay(redis_server.port) if args.redis_relay else None
    fed = start_federation(work / "fed", base=Settings(
        database_url=schema.url,
        redis_url=f"redis://127.0.0.1:{relay.port}/0" if relay else redis_server.url,
        redis_prefix="soak:", lookups_per_minute=100000,
        lookups_per_day=10000000, organisation_lookups_per_minute=100000,
        organisation_lookups_per_day=10000000, deadline_default_ms=DEADLINE_MS))
    for served in fed.kit_threads:
        served.server.app = chaos(served.server.app, random.Random(rng.random()),
                                  args.fail_rate, hang_s=DEADLINE_MS / 1000 + 0.5)
    brokers = [Broker(n, broker_env(fed, work / f"metrics-{n}"), work / f"broker-{n}.log")
               for n in ("A", "B")]
    if args.memwatch:
        soak_memory.watch(brokers[0].env, work / "memwatch")
    events: Counter[str] = Counter()
    memory: list[dict[str, Any]] = []
    restarts: list[soak_redis.Restart] = []
    tally = Tally()
    stop = threading.Event()
    try:
        for broker in brokers:
            broker.start()
        threads = [threading.Thread(target=client, args=(fed, brokers, tally, stop, i),
                                    daemon=True) for i in range(args.clients)]
        began = time.monotonic()
        for t in threads:
            t.start()
        end = began + args.minutes * 60
        never = float("inf")
        next_kill = began + args.kill_every if args.kill_every > 0 else never
        next_redis = began + args.redis_every if args.redis_every > 0 else never
        next_sample = began + 10
        kills = 0
        while time.monotonic() < end:
            now = time.monotonic()
            if now >= next_kill:
                kills += 1
                if kills % 2:
                    brokers[1].kill_worker(rng)
                    events["broker worker SIGKILLed"] += 1
                else:
                    brokers[1].kill_all()
                    time.sleep(1)
                    brokers[1].start()
                    events["broker server SIGKILLed and restarted"] += 1
                next_kill = now + args.kill_every if args.kill_every > 0 else never
            if now >= next_redis:
                down_at = time.monotonic()
                redis_server.stop()
                time.sleep(2)
                redis_server.start()
                restarts.append(soak_redis.Restart(down_at - began,
                                                   redis_server.wait_answering() - began))
                events["redis restarted"] += 1
                next_redis = now + args.redis_every if args.redis_every > 0 else never
            if now >= next_sample:
                with tally.lock:
                    answered = len(tally.accepted)
                memory.append(soak_memory.sample(now - began, answered, brokers[0].rss_mib()))
                next_sample = now + args.sample_every
            time.sleep(0.2)
        stop.set()
        for t in threads:
            t.join(timeout=40)
        duration = time.monotonic() - began
    finally:
        for broker in brokers:
            broker.stop()

    trail = fed.app.extensions["federator"].trail
    # entries the brokers queued and had not integrated when they stopped (committed,
    # so recorded): into the chain first, as the next broker to start would
    trail.integrate_pending()
    with fed.app.extensions["federator"].engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT event, lookup_id FROM audit_records WHERE event IN "
            "('lookup.requested', 'lookup.completed', 'lookup.refused')")).all()
    requested = {r.lookup_id for r in rows if r.event == "lookup.requested"}
    completed = {r.lookup_id for r in rows if r.event == "lookup.completed"}
    refused = sum(r.event == "lookup.refused" for r in rows)
    accepted = set(tally.accepted)
    verdict = trail.verify()
    latencies = sorted(tally.latencies)
    rss = [m["A_mib"] for m in memory if m["A_mib"]]
    redis_rows = soak_redis.recovery(restarts, [
        soak_redis.Answer(a.sent_s - began, a.answered_s - began, a.status)
        for a in tally.answers])
    quarter = rss[len(rss) // 4] if rss else 0.0
    result = {
        "minutes": round(duration / 60, 2), "clients": args.clients,
        "redis_relay": args.redis_relay,
        "fail_rate": args.fail_rate, "events": dict(events),
        "responses": dict(tally.statuses), "lookups_answered": len(accepted),
        "answered_per_s": round(len(accepted) / duration, 2),
        "p50_s": round(latencies[len(latencies) // 2], 3) if latencies else None,
        "p99_s": round(latencies[int(len(latencies) * 0.99)], 3) if latencies else None,
        "deadline_overruns": tally.overruns, "authority_outcomes": dict(tally.outcomes),
        "audit_requested": len(requested), "audit_completed": len(completed),
        "audit_refused": refused,
        "answered_with_both_records": len(accepted & requested & completed),
        "answered_missing_records": len(accepted - (requested & completed)),
        "requested_not_completed": len(requested - completed),
        "requested_not_answered": len(requested - accepted),
        "trail_verifies": verdict.ok, "trail_count": verdict.count,
        "memory_A_mib": memory,
        "memory_A_quarter_vs_end_mib": [quarter, rss[-1] if rss else 0.0],
        "memory_A": soak_memory.summary(memory),
        "redis_restarts": redis_rows,
        "redis_recovery": soak_redis.summary(redis_rows),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    fed.stop()
    if relay is not None:
        relay.close()
    redis_server.stop()
    schema.drop()
    for broker in brokers:  # kept for reading: JSON lines, no personal data
        shutil.copy(broker.log, RESULTS / f"soak-broker-{broker.name}.log")
    if args.memwatch:
        soak_memory.keep_watch(work / "memwatch", RESULTS / "memwatch")
    shutil.rmtree(work, ignore_errors=True)

    (RESULTS / "soak.json").write_text(json.dumps(result, indent=2))
    print(f"\nsoak: {result['minutes']} min, {args.clients} clients, "
          f"kits failing {args.fail_rate:.0%} of calls"
          + (", Redis reached through a relay" if relay else ""))
    rows_out = [
        ("lookups answered (200)", result["lookups_answered"]),
        ("answered per second", result["answered_per_s"]),
        ("latency p50 / p99 (s)", f"{result['p50_s']} / {result['p99_s']}"),
        ("deadline overruns (> deadline + 1 s)", result["deadline_overruns"]),
        ("server errors (500, must be 0)", result["responses"].get("500", 0)),
        ("answered with requested+completed records", result["answered_with_both_records"]),
        ("answered missing a record (must be 0)", result["answered_missing_records"]),
        ("requested, not completed (cut by a kill)", result["requested_not_completed"]),
        ("refusals audited (incl. Redis down)", result["audit_refused"]),
        ("trail verifies", f"{result['trail_verifies']} ({result['trail_count']} records)"),
        ("broker A RSS at 1/4 vs end (MiB)", " → ".join(map(str, result[
            "memory_A_quarter_vs_end_mib"]))),
        ("Redis back: worst s to a working lookup",
         f"{result['redis_recovery']['worst_recovered_s']} "
         f"(never: {result['redis_recovery']['never_recovered']})"),
        ("Redis back: refused after it answered",
         f"{result['redis_recovery']['refused_after_back_total']} "
         f"(worst restart: {result['redis_recovery']['refused_after_back_worst']})"),
        ("responses", json.dumps(result["responses"])),
        ("authority outcomes", json.dumps(result["authority_outcomes"])),
        ("breakage", json.dumps(result["events"])),
    ]
    width = max(len(r[0]) for r in rows_out)
    for name, value in rows_out:
        print(f"  {name:<{width}}  {value}")
    for line in soak_redis.table(redis_rows):
        print(line)
    soak_memory.print_summary(result["memory_A"])
    print(f"\nwritten to {RESULTS / 'soak.json'}")
    broken = [name for name, bad in (
        ("server errors", result["responses"].get("500", 0) > 0),
        ("answered lookups missing an audit record", result["answered_missing_records"] > 0),
        ("trail does not verify", not result["trail_verifies"]),
    ) if bad]
    if broken:
        print(f"SOAK FAILED: {', '.join(broken)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
