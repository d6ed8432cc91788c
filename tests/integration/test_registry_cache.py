"""The endpoint list every lookup routes over is read at most every ``cache_s``
seconds; a change made through the registry is seen at once."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import update

from federator.audit.trail import AuditTrail
from federator.demo.files import toml_array_of_tables
from federator.registry.service import Registry
from federator.storage import endpoints, make_engine, upgrade


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_endpoint_list_is_cached_briefly_and_dropped_on_change(
        database_url: str, tmp_path: Path) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    trail = AuditTrail(engine, checkpoint_every=0)
    clock = Clock()
    registry = Registry(engine, cache_s=2.0, clock=clock)
    seed = tmp_path / "registry.toml"
    seed.write_text(toml_array_of_tables("endpoint", [
        {"id": f"la-{n}", "name": f"LA {n}", "code": f"E0800003{n}", "coverage": [f"E0800003{n}"],
         "protocol": "federator-lookup/1", "url": f"https://la{n}.example.org"}
        for n in (1, 2)]))
    registry.seed(seed, trail)
    assert {e.id: e.status for e in registry.all()} == {"la-1": "active", "la-2": "active"}

    # another broker process suspends la-1 (straight in the database here)
    with engine.begin() as conn:
        conn.execute(update(endpoints).where(endpoints.c.id == "la-1").values(status="suspended"))
    clock.now += 1.0
    assert {e.id: e.status for e in registry.all()}["la-1"] == "active"  # within cache_s
    clock.now += 1.5
    assert {e.id: e.status for e in registry.all()}["la-1"] == "suspended"  # read again

    # a change through this registry is seen at once
    actor = {"actor_id": "admin", "actor_role": "broker-admin", "actor_organisation": "Broker"}
    registry.transition("la-2", "suspend", "testing", actor, trail)
    assert {e.id: e.status for e in registry.all()}["la-2"] == "suspended"
    registry.transition("la-2", "resume", None, actor, trail)
    assert {e.id: e.status for e in registry.all()}["la-2"] == "active"
    engine.dispose()


def test_no_cache_when_cache_s_is_zero(database_url: str, tmp_path: Path) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    registry = Registry(engine, cache_s=0)
    seed = tmp_path / "registry.toml"
    seed.write_text(toml_array_of_tables("endpoint", [
        {"id": "la-1", "name": "LA 1", "code": "E08000031", "coverage": ["E08000031"],
         "protocol": "federator-lookup/1", "url": "https://la1.example.org"}]))
    registry.seed(seed, AuditTrail(engine, checkpoint_every=0))
    assert [e.status for e in registry.all()] == ["active"]
    with engine.begin() as conn:
        conn.execute(update(endpoints).values(status="suspended"))
    assert [e.status for e in registry.all()] == ["suspended"]
    engine.dispose()
