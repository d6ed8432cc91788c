"""The real services the tests use (PostgreSQL, Redis), in one plain module that
``tests/conftest.py`` and the test modules import alike (a conftest cannot be
imported by name when several folders have one).

With ``FEDERATOR_REQUIRE_SERVICES=1`` (set by ``.ci/run``) a missing service
fails the run instead of skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy
from sqlalchemy import text

POSTGRES_URL = os.environ.get("FEDERATOR_TEST_POSTGRES_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("FEDERATOR_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REQUIRED = os.environ.get("FEDERATOR_REQUIRE_SERVICES") == "1"


def unavailable(what: str, error: Exception) -> None:
    if REQUIRED:
        pytest.fail(f"{what} is required (FEDERATOR_REQUIRE_SERVICES=1) but unreachable: {error}")
    pytest.skip(f"{what} unreachable: {error}")


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A database URL for a new, empty PostgreSQL schema, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(POSTGRES_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except sqlalchemy.exc.OperationalError as e:
        admin.dispose()
        unavailable("PostgreSQL", e)
    sep = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
