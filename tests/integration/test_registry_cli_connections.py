"""``federator registry add`` (and every command built on the app) closes its
PostgreSQL connections when it ends: run in a long-lived process (a scheduler,
a test run) it must not leave server processes behind."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import sqlalchemy
from click.testing import CliRunner
from sqlalchemy import text

from federator.cli import main

pytestmark = pytest.mark.integration

SEED = '''
[[endpoint]]
id = "leeds-cs"
name = "Leeds Children's Services"
code = "E08000035"
coverage = ["E08000035"]
protocol = "federator-lookup/1"
url = "http://127.0.0.1:9/"
'''


def open_connections(url: str, application: str) -> int:
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"),
                {"name": application}).scalar_one())
    finally:
        engine.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_registry_add_leaves_no_connection_open(database_url: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    application = f"federator-test-{uuid.uuid4().hex[:8]}"
    tagged = f"{database_url}&application_name={application}"
    for name, value in {"FEDERATOR_ENV": "development", "FEDERATOR_INSTANCE_DIR": str(tmp_path),
                        "FEDERATOR_DATABASE_URL": tagged, "FEDERATOR_AUDIT_KEY": "a" * 40,
                        "FEDERATOR_SECRET_KEY": "s" * 40}.items():
        monkeypatch.setenv(name, value)
    seed = tmp_path / "seed.toml"
    seed.write_text(SEED)
    runner = CliRunner()
    upgraded = runner.invoke(main, ["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    assert open_connections(database_url, application) == 0
    for _ in range(3):
        added = runner.invoke(main, ["registry", "add", str(seed)])
        assert added.exit_code == 0, added.output
        assert "added or updated: leeds-cs" in added.output
    listed = runner.invoke(main, ["registry", "list"])
    assert listed.exit_code == 0 and "leeds-cs" in listed.output
    assert open_connections(database_url, application) == 0
