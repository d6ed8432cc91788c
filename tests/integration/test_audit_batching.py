"""Appends through the queue on PostgreSQL (federator.audit.batching): a batch's
flags count the batch's own earlier records, checkpoints land at every multiple
a batch crosses, the bulk flag history is ``load_history``'s, and an entry whose
writer was killed after its queue commit is integrated by the next one, once."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.exc import IntegrityError
from support.services import postgres_schema

from federator.audit import batching
from federator.audit.bulk_history import load_histories
from federator.audit.flags import FlagLimits
from federator.audit.history import load_history
from federator.audit.queue_writer import QueueWriter
from federator.audit.tables import audit_checkpoints, audit_queue
from federator.audit.trail import AuditTrail, AuditUnavailable
from federator.lookup.interrupted import close_interrupted
from federator.signing import BrokerKeys
from federator.storage import audit_records, make_engine, upgrade

pytestmark = pytest.mark.integration

AT = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)  # a Thursday, in office hours


@pytest.fixture
def engine() -> Iterator[Engine]:
    with postgres_schema() as url:
        engine = make_engine(url)
        upgrade(engine)
        yield engine
        engine.dispose()


def queue(engine: Engine, event: str, at: datetime = AT, **fields: object) -> str:
    """What a writer has done once its queue commit returned, and no more."""
    entry = batching.new_entry()
    writer = QueueWriter(engine)
    writer.write(entry, at.isoformat(timespec="milliseconds"), event, fields, relaxed=False)
    writer.dispose()
    return entry


def lookup(actor: str, child: str, organisation: str = "Leeds") -> dict[str, object]:
    return {"lookup_id": f"{actor}-{child}", "actor_id": actor, "actor_organisation": organisation,
            "basis": {"type": "consent"}, "scope": "targeted", "child_pseudonym": child,
            "authorities": ["leeds-cs"]}


def flags(trail: AuditTrail) -> list[list[str]]:
    return [sorted(f["flag"] for f in r.get("flags") or [])
            for r in trail.records(limit=1000)]


def stored_sizes(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(select(audit_checkpoints.c.tree_size)
                                 .order_by(audit_checkpoints.c.tree_size)).scalars())


def test_a_batchs_flags_count_its_own_earlier_records(engine: Engine) -> None:
    limits = FlagLimits(per_hour=2, repeat_lookups=2, child_organisations=2,
                        sustained_hours=0)
    trail = AuditTrail(engine, flag_limits=limits, checkpoint_every=0)
    for i in range(3):  # one practitioner, one child, three times: all in one batch
        queue(engine, "lookup.requested", AT + timedelta(seconds=i), **lookup("u1", "c1"))
    queue(engine, "lookup.requested", AT + timedelta(seconds=3), **lookup("u2", "c1", "York"))
    queue(engine, "lookup.requested", AT + timedelta(seconds=4), **lookup("u3", "c9"))
    # two practitioners, one new child, in one run (no actor in common)
    queue(engine, "lookup.requested", AT + timedelta(seconds=5), **lookup("u4", "c7", "Hull"))
    queue(engine, "lookup.requested", AT + timedelta(seconds=6), **lookup("u5", "c7", "Bath"))
    assert trail.integrate_pending() == 7
    assert flags(trail) == [
        [], [], ["repeat_lookups", "volume_hour"],  # the third counts the first two
        ["child_many_organisations"],  # Leeds then York looked the child up
        [], [], ["child_many_organisations"]]  # Hull then Bath, in the same run
    assert trail.verify().as_dict() == {"ok": True, "count": 7}


def test_a_practitioners_lookups_in_one_batch_are_flagged_as_if_appended_one_by_one(
        engine: Engine) -> None:
    """Requests and their unmatched completions share runs (a completion reads
    nothing): the no-match streak, volume and repeats still count every one."""
    limits = FlagLimits(per_hour=3, no_match_streak=3, repeat_lookups=2, sustained_hours=0)
    entries = []
    for i in range(6):
        at, child = AT + timedelta(seconds=2 * i), f"c{i % 2}"
        entries.append(("lookup.requested", at, lookup("u1", child)))
        entries.append(("lookup.completed", at + timedelta(seconds=1), {
            "lookup_id": f"u1-{child}", "actor_id": "u1", "actor_organisation": "Leeds",
            "child_pseudonym": child, "complete": True,
            "outcomes": [{"id": "leeds-cs", "outcome": "no_match", "latency_ms": 5,
                          "professionals": 0}]}))
    batched = AuditTrail(engine, flag_limits=limits, checkpoint_every=0)
    for event, at, fields in entries:
        queue(engine, event, at, **fields)
    assert batched.integrate_pending() == 12
    with postgres_schema() as url:
        other = make_engine(url)
        upgrade(other)
        one_by_one = AuditTrail(other, flag_limits=limits, checkpoint_every=0)
        for event, at, fields in entries:
            one_by_one.clock = lambda at=at: at
            one_by_one.append(event, **fields)
        expected = flags(one_by_one)
        other.dispose()
    assert flags(batched) == expected
    raised = {f for record in expected for f in record}
    assert {"no_match_streak", "volume_hour", "repeat_lookups"} <= raised


def test_a_batch_signs_a_checkpoint_at_every_multiple_it_crosses(engine: Engine, tmp_path
                                                                 ) -> None:
    trail = AuditTrail(engine, checkpoint_every=5)
    trail.sign_with(BrokerKeys.load(tmp_path / "key.json", "federator", create=True))
    for i in range(11):
        queue(engine, "lookup.requested", **lookup(f"u{i}", f"c{i}"))
    seen: list[int] = []
    trail.listen(lambda record: seen.append(record["seq"]))
    record = trail.append("lookup.requested",
                          **{**lookup("u1", "c1"), "basis": {"type": "safeguarding"}})
    assert record["seq"] == 12  # integrated after the 11 queued before it
    assert stored_sizes(engine) == [5, 10]
    assert seen == [12]  # flagged (safeguarding basis): the listener heard it
    assert trail.verify().ok


def test_the_bulk_history_is_load_historys(engine: Engine) -> None:
    rng = random.Random(18)
    limits = FlagLimits(per_hour=3, per_day=5, no_match_streak=2, repeat_lookups=1,
                        sustained_hours=2, sustained_per_hour=2)
    trail = AuditTrail(engine, flag_limits=limits, checkpoint_every=0)
    actors, children = ["a", "b", "c", ""], ["x", "y", "z"]
    for i in range(120):  # a random trail over the last two days, in order of time
        at = AT - timedelta(hours=48) + timedelta(minutes=24 * i)
        trail.clock = lambda at=at: at
        actor, child = rng.choice(actors), rng.choice(children)
        fields = lookup(actor, child, rng.choice(["Leeds", "York", "Hull"]))
        if rng.random() < 0.2:
            fields["follows"] = "earlier"
        trail.append("lookup.requested", **fields)
        if rng.random() < 0.5:
            outcome = rng.choice(["no_match", "match"])
            trail.append("lookup.completed", lookup_id=fields["lookup_id"], actor_id=actor,
                         child_pseudonym=child, outcomes=[{"id": "leeds-cs", "outcome": outcome}])
    new = [{"at": (AT + timedelta(minutes=i)).isoformat(timespec="milliseconds"),
            "event": "lookup.requested", "actor_id": a, "child_pseudonym": c}
           for i, (a, c) in enumerate((a, c) for a in actors for c in children)]
    with engine.connect() as conn:
        one_by_one = [load_history(conn, r, limits) for r in new]
        assert load_histories(conn, new, limits) == one_by_one
    assert any(h.actor_hourly for h in one_by_one) and any(h.actor_recent_all_no_match
                                                          for h in one_by_one)


def random_lookups(rng: random.Random, start: datetime, count: int, step: timedelta,
                   jitter: bool = False) -> list[tuple[str, datetime, dict[str, object]]]:
    """Lookups by a few practitioners of a few children, some retries, some
    completions matched (the authorities' references link children typed
    differently), in order of time (``jitter``: out of order by up to a minute)."""
    actors, children, refs = ["a", "b", "c", ""], [f"x{k}" for k in range(8)], ["r1", "r2"]
    out: list[tuple[str, datetime, dict[str, object]]] = []
    for i in range(count):
        at = start + step * i
        if jitter and rng.random() < 0.3:
            at -= timedelta(seconds=rng.randint(1, 60))
        actor, child = rng.choice(actors), rng.choice(children)
        fields = {**lookup(actor, child, rng.choice(["Leeds", "York", "Hull"])),
                  "lookup_id": f"L{start.timestamp():.0f}-{i}"}
        if rng.random() < 0.2:
            fields["follows"] = "earlier"
        out.append(("lookup.requested", at, fields))
        if rng.random() < 0.8:
            outcome = rng.choice(["no_match", "match", "match"])
            answer = {"id": rng.choice(["leeds-cs", "york-cs"]), "outcome": outcome,
                      **({"record_ref": rng.choice(refs)} if outcome == "match" else {})}
            out.append(("lookup.completed", at + timedelta(seconds=1), {
                "lookup_id": fields["lookup_id"], "actor_id": actor,
                "child_pseudonym": child, "outcomes": [answer],
                **({"follows": "earlier"} if "follows" in fields else {})}))
    return out


def flags_and_reasons(trail: AuditTrail) -> list[tuple[str, object]]:
    return [(r["event"], r.get("flags")) for r in trail.records(limit=2000)]


@pytest.mark.parametrize("seed", [18, 19, 20])
def test_a_random_batch_is_flagged_as_if_appended_one_by_one(engine: Engine, seed: int
                                                             ) -> None:
    """On a trail of two days' lookups, a batch of 150 more (practitioners and
    children repeated, matches linking children, retries, times out of order),
    integrated at once, gets every flag and every reason (the counts in it) that
    appending them one by one gives: the batch's earlier records folded into
    the history read before it, with each read's caps."""
    rng = random.Random(seed)
    limits = FlagLimits(per_hour=3, per_day=5, no_match_streak=2, repeat_lookups=1,
                        child_organisations=2, sustained_hours=2, sustained_per_hour=2)
    before = random_lookups(rng, AT - timedelta(hours=48), 120, timedelta(minutes=24))
    batch = random_lookups(rng, AT, 75, timedelta(minutes=2), jitter=True)

    def one_by_one(trail: AuditTrail, entries: list) -> None:
        for event, at, fields in entries:
            trail.clock = lambda at=at: at
            trail.append(event, **fields)

    batched = AuditTrail(engine, flag_limits=limits, checkpoint_every=0)
    one_by_one(batched, before)
    for event, at, fields in batch:
        queue(engine, event, at, **fields)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(audit_queue)).scalar_one() \
            == len(batch)
    assert batched.integrate_pending() == len(batch)
    with postgres_schema() as url:
        other = make_engine(url)
        upgrade(other)
        appended = AuditTrail(other, flag_limits=limits, checkpoint_every=0)
        one_by_one(appended, before + batch)
        expected = flags_and_reasons(appended)
        other.dispose()
    assert flags_and_reasons(batched) == expected
    raised = {(event, f["flag"]) for event, fs in expected[-len(batch):] for f in fs or []}
    assert {("lookup.requested", f) for f in ("volume_hour", "volume_day", "no_match_streak",
            "repeat_lookups", "child_many_organisations", "sustained_volume")} | {
        ("lookup.completed", "repeat_lookups")} <= raised
    assert batched.verify().ok


KILLED = """
import os, signal, sys
from datetime import UTC, datetime
from federator.audit.queue_writer import QueueWriter
from federator.storage import make_engine
QueueWriter(make_engine(sys.argv[1])).write(
    sys.argv[2], datetime.now(UTC).isoformat(timespec="milliseconds"), "lookup.requested",
    {"lookup_id": "L-killed", "actor_id": "u9", "child_pseudonym": "c" * 64}, relaxed=False)
os.kill(os.getpid(), signal.SIGKILL)  # after the queue commit, before integrating
"""


def killed_writer(engine: Engine) -> str:
    entry = batching.new_entry()
    url = engine.url.render_as_string(hide_password=False)
    done = subprocess.run([sys.executable, "-c", KILLED, url, entry], timeout=120, check=False)
    assert done.returncode == -signal.SIGKILL
    return entry


def integrated(engine: Engine, entry: str) -> list[str]:
    with engine.connect() as conn:
        queued = conn.execute(select(func.count()).select_from(audit_queue)).scalar_one()
        assert queued == 0
        return list(conn.execute(select(audit_records.c.lookup_id)
                                 .where(audit_records.c.entry == entry)).scalars())


def test_a_killed_writers_entry_is_integrated_by_the_next_writer_once(engine: Engine) -> None:
    entry = killed_writer(engine)
    trail = AuditTrail(engine, checkpoint_every=0)
    record = trail.append("lookup.requested", **lookup("u1", "c1"))
    assert record["seq"] == 2
    assert integrated(engine, entry) == ["L-killed"]
    assert trail.integrate_pending() == 0  # nothing twice
    with engine.connect() as conn, pytest.raises(IntegrityError):
        row = conn.execute(select(audit_records).where(audit_records.c.entry == entry)
                           ).mappings().one()
        conn.execute(insert(audit_records).values(
            {**row, "seq": 3, "prev_hash": "0" * 64, "hash": "1" * 64}))
    assert trail.verify().as_dict() == {"ok": True, "count": 2}


def test_a_killed_writers_entry_is_integrated_at_start_up(engine: Engine) -> None:
    entry = killed_writer(engine)
    trail = AuditTrail(engine, checkpoint_every=0)
    # the broker starts: the entry becomes a record, then the lookup it began is
    # closed as interrupted once past the deadline (here: at once)
    assert close_interrupted(trail, after_s=0,
                             now=lambda: datetime.now(UTC) + timedelta(hours=1)) == 1
    assert integrated(engine, entry) == ["L-killed"]
    assert [r["event"] for r in trail.records()] == ["lookup.requested", "lookup.interrupted"]
    assert trail.verify().ok


def test_a_killed_writers_entry_is_integrated_by_the_time_checkpoint(engine: Engine,
                                                                      tmp_path) -> None:
    entry = killed_writer(engine)
    trail = AuditTrail(engine, checkpoint_every=0, checkpoint_interval_s=60)
    trail.sign_with(BrokerKeys.load(tmp_path / "key.json", "federator", create=True))
    try:
        assert trail.checkpoint_if_due() is None  # integrated, then signed
        assert integrated(engine, entry) == ["L-killed"]
        assert stored_sizes(engine) == [1]
    finally:
        trail.close()


def test_a_checkpoint_due_at_a_record_is_signed_after_a_later_one(engine: Engine, tmp_path
                                                                   ) -> None:
    """The writer due to sign at 5 came after the one due at 10 (both under load):
    5 is still signed, from the checkpoint before it, not skipped."""
    trail = AuditTrail(engine, checkpoint_every=0)
    trail.sign_with(BrokerKeys.load(tmp_path / "key.json", "federator", create=True))
    for i in range(10):
        trail.append("lookup.requested", **lookup(f"u{i}", f"c{i}"))
    trail.checkpoint(upto=2)
    trail.checkpoint(upto=10)
    assert trail.checkpoint(upto=5).tree_size == 5
    assert stored_sizes(engine) == [2, 5, 10]
    assert trail.verify().ok  # each one's root is the tree's at its size


def test_an_entry_taken_out_of_the_queue_refuses_the_append(engine: Engine, monkeypatch
                                                             ) -> None:
    """An insider deletes an entry in its milliseconds in the queue (docs/audit.md):
    the writer is told the trail is unavailable, so its lookup is refused before
    any authority is asked; the trail stays whole."""
    trail = AuditTrail(engine, checkpoint_every=0)
    trail.append("lookup.requested", **lookup("u1", "c1"))
    write = trail.queue_writer.write

    def and_taken_out(entry, *args, **kwargs):
        write(entry, *args, **kwargs)
        with engine.begin() as conn:
            conn.execute(audit_queue.delete().where(audit_queue.c.entry == entry))

    monkeypatch.setattr(trail.queue_writer, "write", and_taken_out)
    with pytest.raises(AuditUnavailable):
        trail.append("lookup.requested", **lookup("u2", "c2"))
    assert trail.verify().as_dict() == {"ok": True, "count": 1}


def test_an_entry_postgresql_cannot_store_does_not_block_the_trail(engine: Engine) -> None:
    # issue 18 review: a NUL in an indexed field (here the organisation an identity
    # provider's claim gave) made every leader's batch fail on it, and the entry
    # stayed first in the queue: every later append refused, for good
    trail = AuditTrail(engine, checkpoint_every=0)
    with pytest.raises(AuditUnavailable):
        trail.append("lookup.requested", **lookup("u1", "c1", organisation="Leeds\x00"))
    record = trail.append("lookup.requested", **lookup("u2", "c2"))
    assert record["seq"] == 1
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(audit_queue)).scalar() == 0
    assert trail.verify().as_dict() == {"ok": True, "count": 1}
