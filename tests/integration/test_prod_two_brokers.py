"""README "Deploying", exercised: two broker processes (gunicorn through
``federator serve``, two workers each) on one PostgreSQL and one Redis, adapter
kits on loopback. Lookups go through both; both land in the one audit trail,
which verifies; each server's /metrics sums its workers; the servers' JSON
logs carry the request ids and no identity."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from support.brokers import start_broker, wait_ready
from support.budget import UNLIMITED
from support.log_capture import identity_strings, leaks, read_path
from support.named_children import add_named_children, lookup_body

from federator.config import Settings
from federator.demo.federation import Federation, start_federation

METRICS_TOKEN = "scrape-" + "s" * 40
pytestmark = pytest.mark.integration


@pytest.fixture
def federation(tmp_path: Path, database_url: str, redis_url: str, redis_prefix: str
               ) -> Iterator[Federation]:
    fed = start_federation(tmp_path / "fed", base=Settings(
        database_url=database_url, redis_url=redis_url, redis_prefix=redis_prefix,
        **UNLIMITED, deadline_default_ms=4000))
    yield fed
    fed.stop()


def broker_env(fed: Federation) -> dict[str, str]:
    """What an operator sets on every broker host (README "Deploying")."""
    s = fed.settings
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FEDERATOR_", "PROMETHEUS_", "GUNICORN_"))}
    env.update({
        "FEDERATOR_ENV": "development",  # the kits are http on loopback
        "FEDERATOR_INSTANCE_DIR": str(fed.directory),
        "FEDERATOR_DATABASE_URL": str(s.database_url), "FEDERATOR_REDIS_URL": str(s.redis_url),
        "FEDERATOR_REDIS_PREFIX": s.redis_prefix,
        "FEDERATOR_SECRET_KEY": s.secret_key, "FEDERATOR_AUDIT_KEY": s.audit_key,
        "FEDERATOR_SIGNING_KEY_FILE": str(fed.directory / "signing-key.jwk.json"),
        "FEDERATOR_BROKER_ID": s.broker_id, "FEDERATOR_PUBLIC_URL": s.public_url,
        "FEDERATOR_OIDC_ISSUER": str(s.oidc_issuer), "FEDERATOR_OIDC_CLIENT_ID": s.oidc_client_id,
        "FEDERATOR_OIDC_CLIENT_SECRET": str(s.oidc_client_secret),
        "FEDERATOR_OIDC_AUDIENCE": s.oidc_audience,
        "FEDERATOR_LOOKUPS_PER_MINUTE": "1000", "FEDERATOR_DEADLINE_DEFAULT_MS": "4000",
        "FEDERATOR_METRICS_TOKEN": METRICS_TOKEN,
    })
    return env


def lookups_total(metrics_text: str) -> float:
    return sum(float(v) for v in re.findall(
        r'^federator_lookups_total\{outcome="(?:complete|partial)"\} (\S+)$', metrics_text,
        flags=re.M))


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_broker_processes_share_one_trail(federation: Federation, tmp_path: Path) -> None:
    named = add_named_children(federation)
    env = broker_env(federation)
    logs = [tmp_path / "broker-a.log", tmp_path / "broker-b.log"]
    servers = [start_broker(env, log, allow_development=True)  # the kits are http
               for log in logs]
    try:
        for (process, url), log in zip(servers, logs, strict=True):
            wait_ready(url, process, log)
        token = federation.token()
        sent: dict[str, list[str]] = {url: [] for _, url in servers}
        children = [n.child() for n in named]
        for i, child in enumerate(children * 2):
            url = servers[i % 2][1]
            response = requests.post(
                f"{url}/api/v1/lookups", json=lookup_body(child), timeout=30,
                headers={"Authorization": f"Bearer {token}",
                         "X-Request-Id": f"two-brokers-{i:04d}"})
            assert response.status_code == 200, response.text
            answer = response.json()
            assert {a["id"]: a["outcome"] for a in answer["authorities"]}[
                named[i % len(named)].authority] == "match"
            sent[url].append(answer["lookup_id"])

        trail = federation.app.extensions["federator"].trail
        for lookup_ids in sent.values():
            for lookup_id in lookup_ids:
                events = {r["event"] for r in trail.records(lookup_id=lookup_id)}
                assert events == {"lookup.requested", "lookup.completed"}, lookup_id
        assert trail.verify().ok
        auditor = federation.token("auditor")
        for _, url in servers:
            verdict = requests.get(f"{url}/api/v1/audit/verify", timeout=30,
                                   headers={"Authorization": f"Bearer {auditor}"}).json()
            assert verdict["ok"] is True, verdict
            assert verdict["count"] >= 4 * len(children)

        for _, url in servers:
            assert requests.get(f"{url}/metrics", timeout=10).status_code == 401
            scrape = requests.get(f"{url}/metrics", timeout=10,
                                  headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
            assert scrape.status_code == 200
            # both workers' samples, summed: exactly this server's lookups
            assert lookups_total(scrape.text) == len(sent[url])
            authority = named[0].authority
            latency = f'federator_authority_latency_seconds_count{{authority="{authority}"}}'
            assert latency in scrape.text
            assert 'federator_audit_append_seconds_count{event="lookup"}' in scrape.text
            assert "federator_breaker_state{" in scrape.text
    finally:
        for process, _ in servers:
            process.terminate()
        for process, _ in servers:
            process.wait(timeout=30)

    lines = [line for log in logs for line in read_path(log)]
    entries = [json.loads(line) for line in lines if line.startswith("{")]
    ids = {e.get("request_id") for e in entries if e.get("message") == "lookup completed"}
    assert ids == {f"two-brokers-{i:04d}" for i in range(2 * len(children))}
    assert leaks(lines, identity_strings(children)) == []
