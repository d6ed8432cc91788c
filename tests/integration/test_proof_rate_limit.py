"""The public proof endpoint's rate limit (FEDERATOR_PROOFS_PER_MINUTE), counted in
a real Redis per client address: 429 with Retry-After and a JSON body like the
API's other errors; another address, or a proxy's clients told apart by
X-Forwarded-For, keep their own share; without Redis it counts in the process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from federator import create_app
from federator.api.proof_limit import client_key, trusted_proxies
from federator.config import Settings

pytestmark = pytest.mark.integration
PROOF = "/api/v1/transparency/consistency?first=2&second=4"


def broker(tmp_path: Path, **settings: Any) -> Iterator[FlaskClient]:
    app = create_app(Settings(env="development", instance_dir=tmp_path,
                              database_url=f"sqlite:///{tmp_path / 'f.sqlite'}",
                              **settings).checked(), migrate=True)
    services = app.extensions["federator"]
    for i in range(5):
        services.trail.append("audit.records_listed", actor_id=f"u{i}")
    services.trail.checkpoint()
    yield app.test_client()
    services.trail.close()
    services.engine.dispose()


@pytest.fixture
def limited(tmp_path: Path, redis_url: str, redis_prefix: str) -> Iterator[FlaskClient]:
    yield from broker(tmp_path, proofs_per_minute=3, redis_url=redis_url,
                      redis_prefix=redis_prefix)


def ask(client: FlaskClient, address: str, forwarded: str | None = None) -> Any:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return client.get(PROOF, environ_base={"REMOTE_ADDR": address}, headers=headers)


def test_an_address_over_its_limit_is_told_when_to_come_back(limited: FlaskClient):
    for _ in range(3):
        assert ask(limited, "203.0.113.7").status_code == 200
    refused = ask(limited, "203.0.113.7")
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    body = refused.get_json()
    assert body["code"] == 429 and body["status"] == "Too Many Requests"
    assert body["retry_after"] == int(refused.headers["Retry-After"])
    assert "3 a minute" in body["message"]
    # another address, a witness elsewhere, still has its own share
    assert ask(limited, "198.51.100.20").status_code == 200


def test_a_proxys_clients_are_counted_apart_and_cannot_spoof_past_it(limited: FlaskClient):
    # 127.0.0.1 is gunicorn's default forwarded-allow-ips: a local proxy
    for _ in range(3):
        assert ask(limited, "127.0.0.1", "192.0.2.1").status_code == 200
    assert ask(limited, "127.0.0.1", "192.0.2.1").status_code == 429
    assert ask(limited, "127.0.0.1", "192.0.2.2").status_code == 200
    # a client not behind the proxy cannot pick another address to be counted as
    for i in range(3):
        assert ask(limited, "203.0.113.9", f"192.0.2.{i + 50}").status_code == 200
    assert ask(limited, "203.0.113.9", "192.0.2.99").status_code == 429


def test_in_process_without_redis_and_zero_is_no_limit(tmp_path: Path):
    for client in broker(tmp_path / "a", proofs_per_minute=2):
        assert [ask(client, "203.0.113.7").status_code for _ in range(3)] == [200, 200, 429]
    for client in broker(tmp_path / "b", proofs_per_minute=0):
        assert {ask(client, "203.0.113.7").status_code for _ in range(10)} == {200}


def test_who_is_counted():
    local = trusted_proxies(None)
    assert client_key("203.0.113.7", "192.0.2.1", local) == "203.0.113.7"
    assert client_key("127.0.0.1", "192.0.2.1", local) == "192.0.2.1"
    # the nearest untrusted hop: what the client wrote before it is not believed
    assert client_key("127.0.0.1", "10.9.9.9, 192.0.2.1", local) == "192.0.2.1"
    proxies = trusted_proxies("127.0.0.1, 10.0.0.0/8")
    assert client_key("127.0.0.1", "192.0.2.1, 10.1.2.3", proxies) == "192.0.2.1"
    assert client_key("2001:db8::1", None, local) == "2001:db8::/64"
    assert client_key("2001:db8::ffff:1", None, local) == "2001:db8::/64"
    assert client_key("::ffff:192.0.2.1", None, local) == "192.0.2.1"
    assert client_key("127.0.0.1", "not-an-address", local) == "127.0.0.1"
    assert client_key("203.0.113.7", "192.0.2.1", trusted_proxies("*")) == "192.0.2.1"
