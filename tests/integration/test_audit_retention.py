"""Pruning: old bodies go through ``federator.audit.retention.prune``, hashes and
leaves stay, verify passes and reports the range; a body emptied any other way
(an insider past the triggers) fails verify. SQLite and PostgreSQL, real."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError
from support.insider import insider

from federator.audit.merkle import leaf_hash
from federator.audit.retention import RetentionError, earliest_kept, prune
from federator.audit.tables import audit_authorities, audit_child_refs
from federator.audit.trail import AuditTrail
from federator.signing import BrokerKeys
from federator.storage import audit_records, make_engine, upgrade

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
CLI = {"actor_id": "cli:ops", "actor_role": "operator"}


@pytest.fixture
def trail(database_url: str, tmp_path: Path):
    engine = make_engine(database_url)
    upgrade(engine)
    trail = AuditTrail(engine, checkpoint_every=4)
    trail.sign_with(BrokerKeys.load(tmp_path / "key.json", "federator", create=True))
    yield trail
    engine.dispose()


def lookup(trail: AuditTrail, at: datetime, i: int) -> None:
    trail.clock = lambda: at
    trail.append("lookup.requested", lookup_id=f"l{i}", actor_id="p1", child_pseudonym="c1",
                 purpose=f"Worried about school attendance {i}", basis_type="safeguarding",
                 basis={"type": "safeguarding", "justification": f"Bruises seen {i}"},
                 authorities=["leeds"])
    trail.append("lookup.completed", lookup_id=f"l{i}", actor_id="p1", child_pseudonym="c1",
                 outcomes=[{"id": "leeds", "outcome": "match", "record_ref": f"r{i}"}])


def old_and_new(trail: AuditTrail) -> None:
    """Records 1-6 written 100 days before NOW, 7-10 five days before."""
    for i in range(3):
        lookup(trail, NOW - timedelta(days=100, minutes=-i), i)
    for i in range(3, 5):
        lookup(trail, NOW - timedelta(days=5, minutes=-i), i)
    trail.clock = lambda: NOW


def body_of(trail: AuditTrail, seq: int) -> str:
    with trail.engine.connect() as conn:
        return conn.execute(select(audit_records.c.body).where(
            audit_records.c.seq == seq)).scalar_one()


def test_prune_empties_old_bodies_and_verify_passes_and_reports_the_range(trail):
    old_and_new(trail)
    assert trail.verify().ok
    root_before = trail.latest()
    done = prune(trail, days=30, actor=CLI, now=NOW)
    assert done is not None and (done.first, done.last) == (1, 6)
    assert [body_of(trail, s) == "" for s in range(1, 12)] == [True] * 6 + [False] * 5
    with trail.engine.connect() as conn:
        kept = conn.execute(select(audit_records).where(audit_records.c.seq == 2)).mappings().one()
        assert kept["actor_id"] is None and kept["child_pseudonym"] is None
        assert kept["texts"] is None and kept["lookup_id"] is None
        assert kept["event"] == "lookup.completed" and len(kept["leaf"]) == 64
        assert conn.execute(select(func.count()).select_from(audit_child_refs).where(
            audit_child_refs.c.seq <= 6)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(audit_authorities).where(
            audit_authorities.c.seq > 6)).scalar_one() == 4
    verdict = trail.verify()
    assert verdict.ok, verdict
    report = verdict.as_dict()
    assert report["count"] == 11
    (pruned,) = report["pruned"]
    assert (pruned["first"], pruned["last"]) == (1, 6)
    assert pruned["prunes"] == [{"first": 1, "last": 6, "on": NOW.isoformat(
        timespec="milliseconds"), "by": "cli:ops", "seq": 11}]
    # the checkpoints signed over the full bodies still hold: the leaves were kept
    assert trail.latest().tree_size >= root_before.tree_size
    signed = trail.checkpoint()
    assert signed is not None and trail.verify().ok
    assert earliest_kept(trail.engine)["records_from"] == (
        NOW - timedelta(days=5, minutes=-3)).isoformat(timespec="milliseconds")
    assert prune(trail, days=30, actor=CLI, now=NOW) is None  # nothing more is old enough


def test_a_second_prune_covers_the_first_and_the_old_audit_pruned_record_can_go(trail):
    old_and_new(trail)
    prune(trail, days=30, actor=CLI, now=NOW)
    later = NOW + timedelta(days=60)
    trail.clock = lambda: later
    done = prune(trail, days=30, actor=CLI, now=later)
    assert done is not None and done.first == 7 and done.last >= 11  # the first audit.pruned
    assert body_of(trail, 11) == ""
    verdict = trail.verify()
    assert verdict.ok, verdict
    assert verdict.pruned[0]["first"] == 1 and verdict.pruned[0]["last"] == done.last


def test_prune_needs_the_setting_and_a_signed_checkpoint(trail, database_url):
    old_and_new(trail)
    with pytest.raises(RetentionError) as caught:
        prune(trail, days=None, actor=CLI, now=NOW)
    assert "FEDERATOR_AUDIT_RETENTION_DAYS" in caught.value.errors
    with pytest.raises(RetentionError) as caught:
        prune(trail, days=7, actor=CLI, now=NOW)
    assert caught.value.errors == {"FEDERATOR_AUDIT_RETENTION_DAYS": "must be 30 or more"}
    unsigned = AuditTrail(trail.engine, checkpoint_every=0)
    with trail.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(audit_records)).scalar_one() == 10
    engine = make_engine(database_url.replace("federator.sqlite", "fresh.sqlite")
                         ) if database_url.startswith("sqlite") else None
    if engine is not None:
        upgrade(engine)
        unsigned = AuditTrail(engine, checkpoint_every=0)
        lookup(unsigned, NOW - timedelta(days=100), 1)
        with pytest.raises(RetentionError) as caught:
            prune(unsigned, days=30, actor=CLI, now=NOW)
        assert "checkpoint" in caught.value.errors
        engine.dispose()


def test_an_insider_emptying_bodies_directly_fails_verify(trail):
    old_and_new(trail)
    with insider(trail.engine) as conn:  # as a prune would, but with no audit.pruned record
        for seq in (1, 2):
            body = conn.execute(select(audit_records.c.body).where(
                audit_records.c.seq == seq)).scalar_one()
            conn.execute(update(audit_records).where(audit_records.c.seq == seq).values(
                body="", texts=None, leaf=leaf_hash(body.encode()).hex()))
    verdict = trail.verify()
    assert not verdict.ok and verdict.first_bad_seq == 1
    assert "no audit.pruned record covers it" in verdict.reason


def test_an_insider_changing_a_pruned_leaf_fails_verify(trail):
    old_and_new(trail)
    prune(trail, days=30, actor=CLI, now=NOW)
    with insider(trail.engine) as conn:
        conn.execute(update(audit_records).where(audit_records.c.seq == 3).values(
            leaf="0" * 64))
    verdict = trail.verify()
    assert not verdict.ok and "differ from the checkpoint" in verdict.reason


def test_an_insider_emptying_a_body_not_in_the_pruned_range_fails_verify(trail):
    old_and_new(trail)
    prune(trail, days=30, actor=CLI, now=NOW)
    with insider(trail.engine) as conn:
        body = body_of(trail, 8)
        conn.execute(update(audit_records).where(audit_records.c.seq == 8).values(
            body="", texts=None, leaf=leaf_hash(body.encode()).hex()))
    verdict = trail.verify()
    assert not verdict.ok and verdict.first_bad_seq == 8
    assert "no audit.pruned record covers it" in verdict.reason


def test_the_triggers_refuse_a_prune_without_its_audit_record(trail):
    old_and_new(trail)
    body = body_of(trail, 1)
    emptied = dict(body="", texts=None, leaf=leaf_hash(body.encode()).hex(), lookup_id=None,
                   actor_id=None, actor_role=None, actor_organisation=None, purpose=None,
                   basis_type=None, child_pseudonym=None)
    with pytest.raises(DBAPIError) as caught, trail.engine.begin() as conn:
        conn.execute(update(audit_records).where(audit_records.c.seq == 1).values(**emptied))
    assert "append-only: UPDATE on audit_records is refused" in str(caught.value.orig)
    prune(trail, days=30, actor=CLI, now=NOW)
    # past the cut: even with an audit.pruned record, one not covering record 8 is refused
    body = body_of(trail, 8)
    with pytest.raises(DBAPIError), trail.engine.begin() as conn:
        conn.execute(update(audit_records).where(audit_records.c.seq == 8).values(
            **{**emptied, "leaf": leaf_hash(body.encode()).hex()}))
    with pytest.raises(DBAPIError), trail.engine.begin() as conn:  # a body rewritten
        conn.execute(text("UPDATE audit_records SET body = '{}' WHERE seq = 8"))
    assert body_of(trail, 8) == body
    # an audit.pruned record covering it, but with a cut-off before it was written
    trail.append("audit.pruned", first=1, last=8, **CLI,
                 before=(NOW - timedelta(days=10)).isoformat(timespec="milliseconds"))
    with pytest.raises(DBAPIError), trail.engine.begin() as conn:
        conn.execute(update(audit_records).where(audit_records.c.seq == 8).values(
            **{**emptied, "leaf": leaf_hash(body.encode()).hex()}))
    if trail.engine.dialect.name == "postgresql":  # the leaf is checked against the body
        prune_record = trail.append("audit.pruned", first=1, last=8, before="9999", **CLI)
        assert prune_record["seq"] == 13
        with pytest.raises(DBAPIError), trail.engine.begin() as conn:
            conn.execute(update(audit_records).where(audit_records.c.seq == 8).values(
                **{**emptied, "leaf": "0" * 64}))
        with trail.engine.begin() as conn:  # the same, with the right leaf, goes through
            conn.execute(update(audit_records).where(audit_records.c.seq == 8).values(
                **{**emptied, "leaf": leaf_hash(body.encode()).hex()}))


def test_a_forged_audit_pruned_record_does_not_make_a_prune_empty_recent_records(trail):
    old_and_new(trail)
    # an insider with the application's role appends a claim over the whole trail
    forged = trail.append("audit.pruned", first=1, last=10, newly=[1, 10], before="9999",
                          **CLI)
    done = prune(trail, days=30, actor=CLI, now=NOW)  # goes only as far as it may
    assert done is not None and (done.first, done.last) == (1, 6)
    assert done.record == forged["seq"] + 1  # on record under its own audit.pruned
    assert [body_of(trail, s) == "" for s in range(1, 11)] == [True] * 6 + [False] * 4
    # what is pruned is read from the rows, not from what a record claims
    assert earliest_kept(trail.engine)["records_from"] == (
        NOW - timedelta(days=5, minutes=-3)).isoformat(timespec="milliseconds")
    later = NOW + timedelta(days=60)
    trail.clock = lambda: later
    done = prune(trail, days=30, actor=CLI, now=later)
    assert done is not None and done.first == 7 and done.record > forged["seq"] + 1
    assert trail.verify().ok


def test_prune_removes_a_rejected_entrys_row_with_its_record(trail):
    """A queued entry set aside (``queue_checks``) may hold what its lookup held:
    it goes with the body of the record written in its place (PostgreSQL, where
    there is a queue)."""
    if trail.engine.dialect.name != "postgresql":
        pytest.skip("the queue is PostgreSQL's")
    trail.sequencer.wake = lambda: None
    trail.clock = lambda: NOW - timedelta(days=100)
    with trail.engine.begin() as conn:
        conn.execute(text("INSERT INTO audit_queue (entry, at, event, fields) VALUES "
                          "('old', :at, 'lookup.requested', '{')"),
                     {"at": (NOW - timedelta(days=100)).isoformat()})
    trail.integrate_pending()
    old_and_new(trail)  # records 2-7 old, 8-11 recent
    with trail.engine.connect() as conn:
        assert conn.execute(text("SELECT seq FROM audit_queue_rejected")).scalar_one() == 1
    done = prune(trail, days=30, actor=CLI, now=NOW)
    assert done is not None and (done.first, done.last) == (1, 7)
    with trail.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_queue_rejected")).scalar_one() == 0
    assert trail.verify().ok
