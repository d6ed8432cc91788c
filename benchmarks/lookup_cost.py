"""What one lookup costs the broker, in its own process (issue 18).

    .venv/bin/python benchmarks/lookup_cost.py [--fanout 10] [--lookups 300]
        [--without-trail] [--stores postgresql|sqlite]

The broker app is built in this process (no gunicorn, no HTTP client: Flask's
test client), against the adapters of ``benchmarks/fanout.py`` on loopback
(5 ms each), with the trail in PostgreSQL and shared state in Redis (or SQLite
and in-process). It counts, per lookup: the process's CPU and wall time, the
SQL statements by kind and the Redis commands by name. ``--without-trail``
replaces the audit trail's ``append`` and ``enqueue`` with no-ops, for this measurement only:
what the rest of the broker costs, the floor the trail's own work sits on.

Prints a table and writes benchmarks/results/lookup_cost.json. Run it on a quiet
machine or compare runs made one after another: on a shared one, CPU time is
steadier than wall time.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import fanout as bench  # benchmarks/fanout.py: its adapters, stores and request bodies

RESULTS = bench.RESULTS


def environment(work: Path, ports: list[int], idp_url: str, stores: dict[str, str]
                ) -> dict[str, str]:
    from federator.demo.files import toml_array_of_tables

    entries = [{"id": f"bench-{i}", "name": f"Bench {i}", "code": f"E99{i:06d}",
                "coverage": [bench.group(n) for n in bench.FANOUTS if i < n],
                "protocol": "federator-lookup/1", "url": f"http://127.0.0.1:{p}",
                "timeout_ms": 10000, "contact": "-"} for i, p in enumerate(ports)]
    seed = work / "registry.toml"
    seed.write_text(toml_array_of_tables("endpoint", entries))
    return {"FEDERATOR_ENV": "development", "FEDERATOR_INSTANCE_DIR": str(work / "instance"),
            "FEDERATOR_SECRET_KEY": secrets.token_urlsafe(48),
            "FEDERATOR_AUDIT_KEY": secrets.token_urlsafe(48),
            "FEDERATOR_OIDC_ISSUER": idp_url, "FEDERATOR_REGISTRY_SEED": str(seed),
            "FEDERATOR_LOOKUPS_PER_MINUTE": "1000000", "FEDERATOR_LOOKUPS_PER_DAY": "10000000",
            "FEDERATOR_ORGANISATION_LOOKUPS_PER_MINUTE": "1000000",
            "FEDERATOR_ORGANISATION_LOOKUPS_PER_DAY": "10000000",
            "FEDERATOR_FANOUT_WORKERS": "160", "FEDERATOR_BROKER_ID": "federator-demo",
            "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="lookup-cost-metrics-"),
            **stores}


def measure(fanout: int, lookups: int, without_trail: bool, stores_kind: str
            ) -> dict[str, Any]:
    from sqlalchemy import event

    from federator.demo.idp import create_idp_app, fetch_token
    from federator.demo.serving import bind

    with tempfile.TemporaryDirectory() as tmp, bench.Stores(stores_kind) as stores:
        work = Path(tmp)
        adapters, ports = bench.start_adapters(fanout, 5, work)
        idp = bind(0)
        idp.start(create_idp_app(idp.url))
        try:
            os.environ.update(environment(work, ports, idp.url, stores.env))
            from federator import create_app

            app = create_app(migrate=True)
            services = app.extensions["federator"]
            if without_trail:
                services.trail.append = lambda event, **fields: {"seq": 0, "event": event,
                                                                 **fields}
                services.trail.enqueue = lambda event, **fields: None
            client = app.test_client()
            headers = {"Authorization": f"Bearer {fetch_token(idp.url, 'practitioner')}"}

            def one() -> None:
                response = client.post("/api/v1/lookups", json=bench.lookup_body(fanout),
                                       headers=headers)
                if response.status_code != 200:
                    raise RuntimeError(f"lookup failed: {response.status_code}")

            for _ in range(10):  # warm-up: connections, caches, first signatures
                one()
            statements: collections.Counter[str] = collections.Counter()
            commands: collections.Counter[str] = collections.Counter()

            @event.listens_for(services.engine, "before_cursor_execute")
            def _count(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
                words = statement.split()
                statements[" ".join(words[:4])[:60]] += 1

            import redis.client

            original = redis.client.Redis.execute_command

            def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
                commands[str(args[0])] += 1
                return original(self, *args, **kwargs)

            redis.client.Redis.execute_command = counted  # type: ignore[method-assign]
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(lookups):
                one()
            cpu_ms = (time.process_time() - cpu) * 1000 / lookups
            wall_ms = (time.perf_counter() - wall) * 1000 / lookups
            redis.client.Redis.execute_command = original  # type: ignore[method-assign]
        finally:
            adapters.terminate()
            adapters.wait(timeout=10)
            idp.stop()
    return {"fanout": fanout, "lookups": lookups, "without_trail": without_trail,
            "stores": stores_kind, "cpu_ms_per_lookup": round(cpu_ms, 2),
            "wall_ms_per_lookup": round(wall_ms, 2), "adapter_delay_ms": 5,
            "sql_per_lookup": {k: round(v / lookups, 2) for k, v in statements.most_common()},
            "redis_per_lookup": {k: round(v / lookups, 2) for k, v in commands.most_common()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fanout", type=int, default=10, choices=bench.FANOUTS)
    parser.add_argument("--lookups", type=int, default=300)
    parser.add_argument("--without-trail", action="store_true",
                        help="the audit trail's append replaced by a no-op (measurement only)")
    parser.add_argument("--stores", choices=("sqlite", "postgresql"), default="postgresql")
    args = parser.parse_args()
    result = measure(args.fanout, args.lookups, args.without_trail, args.stores)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "lookup_cost.json").write_text(json.dumps(result, indent=2))
    trail = "without the trail" if args.without_trail else "with the trail"
    print(f"\nfan-out {result['fanout']} ({trail}, {result['stores']}): "
          f"{result['cpu_ms_per_lookup']} ms CPU, {result['wall_ms_per_lookup']} ms wall "
          f"per lookup (adapters answer after 5 ms)")
    print("SQL statements per lookup:")
    for statement, n in result["sql_per_lookup"].items():
        print(f"  {n:6.2f}  {statement}")
    print("Redis commands per lookup:")
    for command, n in result["redis_per_lookup"].items():
        print(f"  {n:6.2f}  {command}")


if __name__ == "__main__":
    main()
