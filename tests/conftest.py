"""Shared fixtures: real databases and Redis.

With ``FEDERATOR_REQUIRE_SERVICES=1`` (set by ``.ci/run``) a missing
PostgreSQL or Redis fails the run instead of skipping.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from hypothesis import HealthCheck, settings
from support.services import REDIS_URL, postgres_schema, unavailable

# Property tests check what is true, never how fast: hypothesis's 200 ms
# deadline per example failed them on a loaded two-core machine (a flaky test is
# a bug). Speed is measured in benchmarks/.
settings.register_profile("federator", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("federator")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: an SQLite file, or a new PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'federator.sqlite'}"
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The test Redis (database 15). Shared with other test runs on this machine:
    never flush it; name keys with ``redis_prefix``."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as e:
        unavailable("Redis", e)
    finally:
        client.close()
    yield REDIS_URL


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()
