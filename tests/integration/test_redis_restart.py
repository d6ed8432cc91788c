"""Redis restarted under a running broker: lookups work again as soon as it answers.

A Redis of the test's own is stopped and started again on the same port. While
it is down a lookup is refused (503, nothing sent, the refusal audited); once it
answers PING the very next lookups are answered, and the rate limit is counted
again from the first of them, with no refusal in between. "relayed": the broker
reaches Redis through a relay that does not pass the close on (Redis on another
host or in a container), so every connection pooled before the restart is dead
and only finds out when next used; "direct": loopback, the close arrives.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from support.own_redis import NEEDS_REDIS, OwnRedis, on_own_redis

from federator.demo.federation import Federation

pytestmark = [pytest.mark.integration, NEEDS_REDIS]

#: Lookups at once, so that the broker's pools hold several connections.
AT_ONCE = 6


def lookup(fed: Federation, token: str) -> requests.Response:
    child = fed.world.children[0]
    data: dict[str, Any] = {
        "child": {"nhs_number": child.nhs_number, "postcodes": []},
        "purpose": "Assessment under section 17: finding services already involved",
        "basis": {"type": "statutory", "power": "children-act-1989-s17",
                  "reference": "CASE-7"},
    }
    return requests.post(f"{fed.broker.url}/api/v1/lookups", json=data, timeout=60,
                         headers={"Authorization": f"Bearer {token}"})


def at_once(fed: Federation, token: str, count: int = AT_ONCE) -> list[int]:
    with ThreadPoolExecutor(count) as pool:
        return sorted(r.status_code for r in pool.map(lambda _: lookup(fed, token),
                                                      range(count)))


def restart(redis: OwnRedis) -> None:
    """Stop, wait, start on the same port; return once the server answers PING."""
    redis.stop()
    time.sleep(1)
    redis.start()
    while not redis.answers():
        time.sleep(0.05)


def refusals(fed: Federation) -> list[dict[str, Any]]:
    return fed.app.extensions["federator"].trail.records(event="lookup.refused")


@pytest.mark.parametrize("relayed", [False, True], ids=["direct", "relayed"])
def test_lookups_are_answered_as_soon_as_redis_is_back(tmp_path: Path, relayed: bool) -> None:
    with on_own_redis(tmp_path, relayed=relayed) as (fed, redis):
        token = fed.token()
        answer = lookup(fed, token)
        assert answer.status_code == 200, answer.text
        assert answer.json()["authorities"], "the lookup must ask someone (breakers read)"
        assert at_once(fed, token) == [200] * AT_ONCE
        pool = fed.app.extensions["federator"].state.redis.connection_pool
        held = [pool.get_connection() for _ in range(3)]  # several pooled, all to go stale
        for connection in held:
            connection.connect()
            pool.release(connection)
        assert len(pool._available_connections) >= 3
        before = len(refusals(fed))
        restart(redis)

        first = lookup(fed, token)  # takes a connection pooled before the restart
        assert first.status_code == 200, first.text
        assert at_once(fed, token) == [200] * AT_ONCE
        assert len(refusals(fed)) == before

        # Redis down is still a refusal, nothing sent, audited
        redis.stop()
        trail = fed.app.extensions["federator"].trail
        sent = len(trail.records(event="lookup.requested"))
        refused = lookup(fed, token)
        assert refused.status_code == 503, refused.text
        assert refusals(fed)[-1]["reason"] == "shared state unavailable"
        assert len(trail.records(event="lookup.requested")) == sent
        redis.start()
        assert lookup(fed, token).status_code == 200


@pytest.mark.parametrize("relayed", [False, True], ids=["direct", "relayed"])
def test_the_rate_limit_counts_again_as_soon_as_redis_is_back(
        tmp_path: Path, relayed: bool, caplog: pytest.LogCaptureFixture) -> None:
    """Redis keeps no data over the restart (no persistence): the minute's count
    starts again, from the first lookup after Redis answers, and the budget's
    connections pooled before the restart are tried once more at once: none may
    fail once Redis answers. Beyond the budget again, the fact is recorded again
    (what marked it recorded went with Redis's data)."""
    per_minute = AT_ONCE
    with on_own_redis(tmp_path, relayed=relayed, lookups_per_minute=per_minute) as (fed, redis):
        token = fed.token()
        assert at_once(fed, token, per_minute) == [200] * per_minute
        assert lookup(fed, token).status_code == 429
        restart(redis)
        caplog.clear()

        answered = [lookup(fed, token).status_code for _ in range(per_minute)]
        assert answered == [200] * per_minute
        over = lookup(fed, token)
        assert over.status_code == 429, over.text
        assert refusals(fed) == []  # no lookup refused as "shared state unavailable"
        records = fed.app.extensions["federator"].trail.records(event="lookup.rate_limited")
        assert len(records) == 2
