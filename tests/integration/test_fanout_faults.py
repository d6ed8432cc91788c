"""The fan-out against authorities that misbehave, over real sockets on loopback.

A small adapter server with a fault switch stands in for an authority; the
broker, identity provider and the demo's kits are the real ones. Each fault
gives its outcome, the lookup returns by its deadline (generous bounds, not a
timing assertion), and the audit trail holds both records of every lookup.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from support.fault_server import (
    DEADLINE_MS,
    SLACK_S,
    FaultServer,
    body,
    fault_code,
    post,
    seed_for,
    settings,
)
from support.own_redis import NEEDS_REDIS, on_own_redis

from federator.demo.federation import Federation, start_federation

pytestmark = pytest.mark.integration

FAULTS = {
    # fault: (outcome, words the detail must hold)
    "ok": ("match", None),
    "declined": ("declined", None),
    "slow:300": ("match", None),
    "slow:6000": ("timeout", "deadline"),
    "hang": ("timeout", "deadline"),
    "drip": ("timeout", "deadline"),
    "close": ("error", "connection"),
    "reset": ("error", "connection"),
    "500": ("error", "HTTP 500"),
    "garbage": ("error", "not JSON"),
    "huge": ("error", "larger than"),
    "other_id": ("error", "another lookup"),
    "unsigned": ("error", "HTTP 401"),
}


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[Federation, dict[str, FaultServer]]]:
    directory = tmp_path_factory.mktemp("faults")
    servers = {name: FaultServer(name) for name in FAULTS}
    try:
        fed = start_federation(directory / "demo", base=settings(),
                               extra_seed=seed_for(servers, directory / "faults.toml"))
        yield fed, servers
        fed.stop()
    finally:
        for server in servers.values():
            server.stop()


@pytest.mark.parametrize("fault", list(FAULTS))
def test_each_fault_gives_its_outcome_by_the_deadline_and_is_audited(
        faulty: tuple[Federation, dict[str, FaultServer]], fault: str) -> None:
    fed, servers = faulty
    index = list(servers).index(fault)
    token = fed.token()
    started = time.monotonic()
    response = post(fed, body(fed, [fault_code(index)]), token)
    took = time.monotonic() - started
    assert response.status_code == 200, response.text
    answer = response.json()
    [entry] = [a for a in answer["authorities"] if a["id"] == f"fault-{index}"]
    outcome, words = FAULTS[fault]
    assert entry["outcome"] == outcome, entry
    if words:
        assert words in (entry["detail"] or ""), entry
    assert answer["complete"] is (outcome in ("match", "no_match") and all(
        a["outcome"] in ("match", "no_match") for a in answer["authorities"]))
    if outcome != "match":
        assert "fault-" + str(index) not in {s for p in answer["professionals"]
                                             for s in p["sources"]}
    assert took < DEADLINE_MS / 1000 + SLACK_S, f"lookup took {took:.1f}s"
    trail = fed.app.extensions["federator"].trail
    records = trail.records(lookup_id=answer["lookup_id"])
    assert [r["event"] for r in records] == ["lookup.requested", "lookup.completed"]
    assert {o["id"]: o["outcome"] for o in records[1]["outcomes"]}[f"fault-{index}"] == outcome


def test_every_fault_at_once_still_returns_by_the_deadline(
        faulty: tuple[Federation, dict[str, FaultServer]]) -> None:
    fed, servers = faulty
    started = time.monotonic()
    answer = post(fed, body(fed, [fault_code(i) for i in range(len(servers))]),
                  fed.token()).json()
    took = time.monotonic() - started
    assert took < DEADLINE_MS / 1000 + SLACK_S, f"lookup took {took:.1f}s"
    got = {a["id"]: a["outcome"] for a in answer["authorities"]}
    assert {got[f"fault-{i}"] for i in range(len(servers))} == {
        o for o, _ in FAULTS.values()}
    assert answer["complete"] is False
    trail = fed.app.extensions["federator"].trail
    assert [r["event"] for r in trail.records(lookup_id=answer["lookup_id"])] == [
        "lookup.requested", "lookup.completed"]


def test_event_stream_client_that_leaves_mid_stream_still_gets_the_lookup_audited(
        faulty: tuple[Federation, dict[str, FaultServer]]) -> None:
    fed, servers = faulty
    names = list(servers)
    areas = [fault_code(names.index(f)) for f in ("ok", "slow:300", "hang", "drip")]
    raw = json.dumps(body(fed, areas)).encode()
    request = (f"POST /api/v1/lookups HTTP/1.1\r\nHost: 127.0.0.1:{fed.broker.port}\r\n"
               f"Authorization: Bearer {fed.token()}\r\nAccept: text/event-stream\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(raw)}\r\n\r\n"
               ).encode() + raw
    trail = fed.app.extensions["federator"].trail
    before = {r["lookup_id"] for r in trail.records(event="lookup.completed", limit=1000)}
    with socket.create_connection(("127.0.0.1", fed.broker.port), timeout=10) as sock:
        sock.sendall(request)
        seen = b""
        while b"event: authority" not in seen:
            chunk = sock.recv(4096)
            assert chunk, "the broker closed the stream before any event"
            seen += chunk
    # The client has gone after the first event; the lookup must still be finished and
    # its completion audited (within the deadline, plus slack).
    limit = time.monotonic() + DEADLINE_MS / 1000 + SLACK_S + 5
    completed: list[dict[str, Any]] = []
    while time.monotonic() < limit and not completed:
        completed = [r for r in trail.records(event="lookup.completed", limit=1000)
                     if r["lookup_id"] not in before]
        time.sleep(0.2)
    assert completed, "no lookup.completed after the client went away"
    [record] = completed
    assert record["client_gone"] is True
    assert {o["outcome"] for o in record["outcomes"] if o["id"].startswith("fault-")} == {
        "match", "timeout"}
    assert [r["event"] for r in trail.records(lookup_id=record["lookup_id"])] == [
        "lookup.requested", "lookup.completed"]


@NEEDS_REDIS
def test_redis_down_refuses_lookups_with_503_keeps_the_rest_and_recovers(
        tmp_path: Path) -> None:
    with on_own_redis(tmp_path) as (fed, redis):
        data = body(fed, [])
        token = fed.token()
        assert post(fed, data, token).status_code == 200
        redis.stop()
        refused = post(fed, data, token)
        assert refused.status_code == 503, refused.text
        assert "circuit breakers" in refused.json()["message"]
        assert requests.get(f"{fed.broker.url}/healthz", timeout=10).status_code == 200
        assert requests.get(f"{fed.broker.url}/.well-known/jwks.json",
                            timeout=10).status_code == 200
        assert requests.get(f"{fed.broker.url}/readyz", timeout=10).status_code == 503
        trail = fed.app.extensions["federator"].trail
        assert trail.records(event="lookup.refused")[-1]["reason"] == \
            "shared state unavailable"
        redis.start()
        assert post(fed, data, token).status_code == 200  # no restart of the broker


@pytest.mark.parametrize("shared", ["in-process", "redis"])
def test_a_failing_authority_is_left_alone_after_a_few_failures_then_tried_again(
        tmp_path: Path, request: pytest.FixtureRequest, shared: str) -> None:
    redis_options: dict[str, Any] = {}
    if shared == "redis":
        redis_options = {"redis_url": request.getfixturevalue("redis_url"),
                         "redis_prefix": request.getfixturevalue("redis_prefix")}
    server = FaultServer("500")
    try:
        fed = start_federation(tmp_path / "demo", base=settings(
            breaker_failures=3, breaker_cooldown_s=1, **redis_options),
            extra_seed=seed_for({"500": server}, tmp_path / "faults.toml"))
        try:
            token = fed.token()

            def outcome() -> tuple[str, str]:
                answer = post(fed, body(fed, [fault_code(0)]), token).json()
                [entry] = [a for a in answer["authorities"] if a["id"] == "fault-0"]
                return entry["outcome"], entry["detail"] or ""

            assert [outcome()[0] for _ in range(3)] == ["error"] * 3
            state, detail = outcome()
            assert (state, server.requests) == ("unavailable", 3)
            assert "circuit open" in detail
            server.fault = "ok"
            time.sleep(1.3)  # the cool-down
            assert outcome()[0] == "match"  # the one probe went through and closed it
            assert outcome()[0] == "match"
            assert server.requests == 5
        finally:
            fed.stop()
    finally:
        server.stop()
