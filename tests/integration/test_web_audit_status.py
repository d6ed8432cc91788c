"""The verification status on the auditor pages: ``plan`` (pure) decides what a
page view costs; ``trail_status`` over a real trail in SQLite and PostgreSQL and
the shared state in Redis and in-process verifies only what is new, and names
a record changed after it was verified."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import delete, update
from support.insider import insider

from federator.audit.trail import AuditTrail
from federator.signing import BrokerKeys
from federator.state import SharedState
from federator.storage import audit_records, make_engine, upgrade
from federator.web.audit_status import Known, plan, trail_status, verify_all

pytestmark = pytest.mark.integration


def known(through: int, *, ok: bool = True, at: float = 0.0) -> Known:
    return Known(ok, through, "h" * 64, at)


@pytest.mark.parametrize(("state", "head", "now", "expected"), [
    (None, 0, 100.0, "empty"),
    (None, 50, 100.0, "full"),  # short trail, nothing known: walk it now
    (None, 5000, 100.0, "wait"),  # long trail, nothing known: never on a page view
    (known(50), 50, 100.0, "current"),
    (known(50), 60, 100.0, "extend"),
    (known(50, at=95.0), 60, 100.0, "current"),  # checked 5 s ago: not again yet
    (known(50), 50 + 2001, 100.0, "wait"),
    (known(50), 40, 100.0, "shrunk"),
    (known(50, ok=False), 60, 100.0, "current"),  # broken stays until a full walk
])
def test_plan(state, head, now, expected):
    assert plan(state, head, now, step=2000, every_s=10.0) == expected


@pytest.fixture(params=["in-process", "redis"])
def state(request: pytest.FixtureRequest) -> SharedState:
    if request.param == "redis":
        return SharedState(request.getfixturevalue("redis_url"),
                           request.getfixturevalue("redis_prefix"))
    return SharedState(None)


def make_trail(database_url: str, tmp_path: Path) -> AuditTrail:
    engine = make_engine(database_url, tmp_path)
    upgrade(engine)
    trail = AuditTrail(engine, checkpoint_every=4)
    trail.sign_with(BrokerKeys.load(tmp_path / "key.jwk", "federator", create=True))
    return trail


def append(trail: AuditTrail, n: int) -> None:
    for i in range(n):
        trail.append("auth.signed_in", actor_id=f"user-{i}", actor_role="practitioner",
                     actor_organisation="Leeds")


def test_status_verifies_what_is_new_and_sees_changes(database_url, tmp_path, state,
                                                     monkeypatch):
    monkeypatch.setattr("federator.web.audit_status.EVERY_S", 0.0)
    trail = make_trail(database_url, tmp_path)
    assert trail_status(trail, state)["state"] == "empty"
    append(trail, 6)
    first = trail_status(trail, state)  # nothing known, short trail: walked inline
    assert first["state"] == "ok" and first["through"] == 6 and first["pending"] == 0
    assert first["checkpoint"]["tree_size"] == 4

    walked: list[int] = []
    original = trail.verify

    def spy(*, start: int = 1, end: int | None = None, batch: int = 5000):
        walked.append(start)
        return original(start=start, end=end, batch=batch)

    monkeypatch.setattr(trail, "verify", spy)
    append(trail, 3)
    second = trail_status(trail, state)
    assert second["state"] == "ok" and second["through"] == 9
    assert walked == [7]  # only the three new records

    engine = trail.engine
    with insider(engine) as conn:  # rewrite an already verified record
        body = conn.execute(audit_records.select().where(audit_records.c.seq == 9)
                            ).mappings().one()["body"]
        conn.execute(update(audit_records).where(audit_records.c.seq == 9)
                     .values(hash="0" * 64, body=body.replace("user-2", "user-X")))
    third = trail_status(trail, state)  # nothing new: still one read notices
    assert third["state"] == "broken" and third["bad_seq"] == 9
    assert "changed after it was verified" in third["reason"]
    again = trail_status(trail, state)  # broken stays broken
    assert again["state"] == "broken"

    with insider(engine) as conn:
        conn.execute(update(audit_records).where(audit_records.c.seq == 9)
                     .values(body=body))
    monkeypatch.setattr(trail, "verify", original)
    full = verify_all(trail, state)  # a full walk still finds the bad hash at 9
    assert not full.ok and full.bad_seq == 9
    engine.dispose()


def test_a_cut_tail_shows_as_missing_records(database_url, tmp_path, state, monkeypatch):
    monkeypatch.setattr("federator.web.audit_status.EVERY_S", 0.0)
    trail = make_trail(database_url, tmp_path)
    append(trail, 7)
    assert trail_status(trail, state)["through"] == 7
    with insider(trail.engine) as conn:
        conn.execute(delete(audit_records).where(audit_records.c.seq >= 6))
    status = trail_status(trail, state)
    assert status["state"] == "broken" and status["bad_seq"] == 6
    assert "record 6 is missing" in status["reason"]
    trail.engine.dispose()
