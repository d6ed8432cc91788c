"""Health probes feed the circuit breakers: failed probes of a dead authority open
its breaker (real sockets on loopback); good probes never close an open one."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from adapters.base import OutboundClient
from federator.demo.serving import bind
from federator.lookup.breakers import OPEN, BreakerPolicy, Breakers
from federator.lookup.routing import Endpoint
from federator.registry.health import Health, probe_all
from federator.state import SharedState
from federator.storage import make_engine, upgrade

pytestmark = pytest.mark.integration


def endpoint(url: str, status: str = "active") -> Endpoint:
    return Endpoint(id="leeds-cs", name="Leeds", code="E08000035", coverage=("E08000035",),
                    protocol="federator-lookup/1", url=url, timeout_ms=2000, contact="",
                    status=status)


@pytest.fixture
def health(tmp_path: Path) -> Iterator[Health]:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path)
    upgrade(engine)
    yield Health(engine)
    engine.dispose()


@pytest.fixture
def dead_url() -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def test_failed_probes_open_the_breaker(health: Health, dead_url: str) -> None:
    breakers = Breakers(SharedState(None), BreakerPolicy(failures=2, window_s=60))
    client = OutboundClient()
    probe_all(client, [endpoint(dead_url)], health, breakers)
    assert breakers.admit(["leeds-cs"])["leeds-cs"].allowed
    probe_all(client, [endpoint(dead_url)], health, breakers)
    assert breakers.admit(["leeds-cs"])["leeds-cs"].state == OPEN


def test_suspended_endpoints_do_not_count(health: Health, dead_url: str) -> None:
    breakers = Breakers(SharedState(None), BreakerPolicy(failures=1))
    probe_all(OutboundClient(), [endpoint(dead_url, "suspended")], health, breakers)
    assert breakers.admit(["leeds-cs"])["leeds-cs"].allowed


def test_a_good_probe_does_not_close_an_open_breaker(health: Health) -> None:
    app = Flask(__name__)
    app.add_url_rule("/health", view_func=lambda: {"status": "ok",
                                                   "protocol": "federator-lookup/1"})
    served = bind(0).start(app)
    try:
        breakers = Breakers(SharedState(None), BreakerPolicy(failures=1, cooldown_s=60))
        breakers.record("leeds-cs", "error", breakers.admit(["leeds-cs"])["leeds-cs"])
        assert breakers.admit(["leeds-cs"])["leeds-cs"].state == OPEN
        [result] = probe_all(OutboundClient(), [endpoint(served.url)], health, breakers)
        assert result.ok
        assert breakers.admit(["leeds-cs"])["leeds-cs"].state == OPEN
    finally:
        served.stop()
