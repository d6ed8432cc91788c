"""The trail in a real database (SQLite and PostgreSQL): tampering done directly
in the database is named by ``verify``; checkpoints catch a rewritten or cut
trail; flags are computed from what the trail already holds."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update
from support.insider import insider

from federator.audit.chain import canonical, record_hash
from federator.audit.checkpoints import open_checkpoint
from federator.audit.flags import FlagLimits
from federator.audit.merkle import inclusion_proof, leaf_hash, root, verify_inclusion
from federator.audit.tables import audit_checkpoints, audit_flags
from federator.audit.trail import AuditTrail
from federator.signing import BrokerKeys
from federator.storage import audit_records, make_engine, upgrade

pytestmark = pytest.mark.integration


@pytest.fixture
def trail(database_url: str, tmp_path: Path):
    engine = make_engine(database_url)
    upgrade(engine)
    trail = AuditTrail(engine, checkpoint_every=4,
                       flag_limits=FlagLimits(per_hour=2, no_match_streak=2,
                                              child_organisations=2))
    trail.sign_with(BrokerKeys.load(tmp_path / "key.json", "federator", create=True))
    yield trail
    engine.dispose()


def fill(trail: AuditTrail, n: int) -> None:
    for i in range(n):
        trail.append("registry.updated", actor_id=f"admin-{i % 3}", endpoint=f"e{i}")


def rows(trail: AuditTrail) -> list[dict]:
    with trail.engine.connect() as conn:
        return [dict(r) for r in conn.execute(
            select(audit_records).order_by(audit_records.c.seq)).mappings()]


def set_row(trail: AuditTrail, seq: int, **values) -> None:
    with insider(trail.engine) as conn:
        conn.execute(update(audit_records).where(audit_records.c.seq == seq).values(**values))


def test_an_untouched_trail_verifies_with_its_count(trail):
    fill(trail, 10)
    assert trail.verify().as_dict() == {"ok": True, "count": 10}
    assert trail.verify(start=3, end=7).as_dict() == {"ok": True, "count": 5}


def test_checkpoints_are_signed_at_the_interval_and_cover_the_merkle_root(trail):
    fill(trail, 9)
    with trail.engine.connect() as conn:
        sizes = conn.execute(select(audit_checkpoints.c.tree_size)).scalars().all()
    assert sorted(sizes) == [4, 8]
    cp = open_checkpoint(trail.covering(5).signed, trail.keys.jwks())
    leaves = [leaf_hash(r["body"].encode()) for r in rows(trail)[:8]]
    assert (cp.tree_size, cp.root_hash, cp.head_hash) == (8, root(leaves).hex(),
                                                          rows(trail)[7]["hash"])
    verify_inclusion(4, 8, leaves[4], inclusion_proof(4, leaves), bytes.fromhex(cp.root_hash))


def test_a_changed_record_is_named(trail):
    fill(trail, 6)
    body = json.loads(rows(trail)[2]["body"])
    body["actor_id"] = "someone-else"
    set_row(trail, 3, body=canonical(body), actor_id="someone-else")
    verdict = trail.verify()
    assert (verdict.ok, verdict.first_bad_seq) == (False, 3)
    assert verdict.reason == "record content does not match its hash"


@pytest.mark.parametrize("column", ["actor_id", "actor_organisation", "event", "basis_type"])
def test_a_changed_filter_column_alone_is_named(trail, column):
    # the auditors' filters read these columns: editing one without the hashed body
    # would hide a lookup from a filtered search, so verify compares them to the body
    fill(trail, 6)
    set_row(trail, 4, **{column: "something-else"})
    verdict = trail.verify()
    assert (verdict.ok, verdict.first_bad_seq) == (False, 4)
    assert verdict.reason == f"column {column} no longer matches the hashed record"


def test_a_deleted_record_is_named(trail):
    fill(trail, 6)
    with insider(trail.engine) as conn:
        conn.execute(delete(audit_records).where(audit_records.c.seq == 2))
    verdict = trail.verify()
    assert (verdict.ok, verdict.first_bad_seq, verdict.reason) == (
        False, 2, "record 2 is missing")


def test_reordered_records_are_named(trail):
    fill(trail, 6)
    r = rows(trail)
    swap = {k: r[3][k] for k in ("body", "prev_hash", "hash", "actor_id")}
    other = {k: r[4][k] for k in ("body", "prev_hash", "hash", "actor_id")}
    with insider(trail.engine) as conn:  # move both out of the way of the unique hashes
        conn.execute(update(audit_records).where(audit_records.c.seq == 4)
                     .values(prev_hash="x", hash="y"))
        conn.execute(update(audit_records).where(audit_records.c.seq == 5).values(**swap))
        conn.execute(update(audit_records).where(audit_records.c.seq == 4).values(**other))
    verdict = trail.verify()
    assert (verdict.ok, verdict.first_bad_seq) == (False, 4)


def test_an_inserted_record_is_named(trail):
    fill(trail, 3)
    head = rows(trail)[-1]
    forged = canonical({"seq": 4, "at": head["at"], "event": "lookup.requested",
                        "actor_id": "intruder"})
    with trail.engine.begin() as conn:  # a well-formed record slipped in after the head ...
        conn.execute(audit_records.insert().values(
            seq=4, at=head["at"], event="lookup.requested", body=forged,
            prev_hash=head["hash"], hash=record_hash(head["hash"], forged)))
    fill(trail, 1)  # ... links in, so only a checkpoint could tell; here a bad one:
    set_row(trail, 4, hash="f" * 64)
    verdict = trail.verify()
    assert (verdict.ok, verdict.first_bad_seq) == (False, 4)


def test_a_record_inserted_in_the_middle_is_named(trail):
    fill(trail, 5)
    # Make room at seq 3 as an intruder would: move records 3.. up by one.
    with insider(trail.engine) as conn:
        for seq in (5, 4, 3):
            conn.execute(update(audit_records).where(audit_records.c.seq == seq)
                         .values(seq=seq + 1))
        prev = conn.execute(select(audit_records.c.hash).where(
            audit_records.c.seq == 2)).scalar_one()
        body = canonical({"seq": 3, "event": "lookup.requested", "actor_id": "intruder"})
        conn.execute(audit_records.insert().values(
            seq=3, at="2026-01-01T00:00:00.000+00:00", event="lookup.requested", body=body,
            prev_hash="i" * 64, hash=record_hash(prev, body)))
    verdict = trail.verify()
    assert not verdict.ok and verdict.first_bad_seq == 3


def test_a_rewritten_trail_is_caught_by_its_checkpoint(trail):
    fill(trail, 8)  # checkpoints at 4 and 8
    # Edit record 6 and recompute every hash after it: the chain alone is fooled.
    r = rows(trail)
    prev = r[4]["hash"]
    with insider(trail.engine) as conn:
        for row in r[5:]:
            body = json.loads(row["body"])
            if body["seq"] == 6:
                body["endpoint"] = "changed"
            text = canonical(body)
            digest = record_hash(prev, text)
            conn.execute(update(audit_records).where(audit_records.c.seq == body["seq"])
                         .values(body=text, prev_hash=prev, hash=digest))
            prev = digest
    assert trail.verify(start=5).ok is False  # the head no longer matches checkpoint 8
    verdict = trail.verify()
    assert (verdict.ok, verdict.first_bad_seq) == (False, 5)
    assert "differ from the checkpoint signed at record 8" in verdict.reason
    assert "records 5 to 8" in verdict.reason  # after the good checkpoint at 4


def test_a_cut_tail_is_caught_by_its_checkpoint(trail):
    fill(trail, 9)
    with insider(trail.engine) as conn:
        conn.execute(delete(audit_records).where(audit_records.c.seq >= 7))
    verdict = trail.verify()
    assert (verdict.ok, verdict.first_bad_seq) == (False, 7)
    assert "checkpoint signed at record 8" in verdict.reason


def test_a_forged_checkpoint_signature_is_named(trail):
    fill(trail, 4)
    with insider(trail.engine) as conn:
        signed = conn.execute(select(audit_checkpoints.c.signed)).scalar_one()
        head, payload, sig = signed.split(".")
        conn.execute(update(audit_checkpoints).values(
            signed=f"{head}.{payload}.{sig[:-4]}AAAA"))
    verdict = trail.verify()
    assert (verdict.ok, verdict.first_bad_seq) == (False, 4)
    assert "signature does not verify" in verdict.reason


def requested(trail: AuditTrail, actor: str, org: str, child: str, **extra) -> dict:
    return trail.append("lookup.requested", actor_id=actor, actor_organisation=org,
                        basis={"type": "consent"}, scope="targeted", child_pseudonym=child,
                        authorities=["leeds-cs"], **extra)


def completed(trail: AuditTrail, actor: str, outcome: str) -> None:
    trail.append("lookup.completed", actor_id=actor, outcomes=[
        {"id": "leeds-cs", "outcome": outcome}, {"id": "york-health", "outcome": outcome}])


def flag_codes(record: dict) -> set[str]:
    return {f["flag"] for f in record["flags"]} - {"out_of_hours"}


def test_volume_streak_and_many_organisations_come_from_the_trail(trail):
    assert flag_codes(requested(trail, "u1", "Leeds", "c1")) == set()
    assert flag_codes(requested(trail, "u1", "Leeds", "c2")) == set()
    assert flag_codes(requested(trail, "u1", "Leeds", "c3")) == {"volume_hour"}
    assert flag_codes(requested(trail, "u2", "York", "c9")) == set()
    completed(trail, "u2", "no_match")
    completed(trail, "u2", "no_match")
    assert flag_codes(requested(trail, "u2", "York", "c8")) == {"no_match_streak"}
    assert flag_codes(requested(trail, "u3", "Bradford", "c1")) == {
        "child_many_organisations"}
    with trail.engine.connect() as conn:
        stored = set(conn.execute(select(audit_flags.c.flag)).scalars())
    assert {"volume_hour", "no_match_streak", "child_many_organisations"} <= stored
    assert trail.verify().ok


def test_a_match_breaks_the_no_match_streak(trail):
    completed(trail, "u2", "no_match")
    completed(trail, "u2", "match")
    assert "no_match_streak" not in flag_codes(requested(trail, "u2", "York", "c8"))


def test_repeat_lookups_count_in_the_database_and_leave_out_retries(trail):
    """Counted by the query itself: a retry (``follows``) is not a repeat, and a
    purpose that merely mentions "follows": inside its text still counts."""
    limit = trail.flag_limits.repeat_lookups
    for _ in range(limit):  # up to the limit: not flagged
        assert "repeat_lookups" not in flag_codes(requested(
            trail, "u7", "Leeds", "c7", purpose='Visit notes say "follows": a referral'))
    for _ in range(3):  # retries of those lookups
        assert "repeat_lookups" not in flag_codes(requested(
            trail, "u7", "Leeds", "c7", follows="01JRETRIED0000000000000000"))
    assert "repeat_lookups" in flag_codes(requested(trail, "u7", "Leeds", "c7"))
    assert "repeat_lookups" not in flag_codes(requested(trail, "u8", "Leeds", "c7"))


def test_volume_flags_hold_past_the_rows_the_count_reads(database_url: str, tmp_path: Path):
    """The day's count reads at most one row past the larger limit: beyond it
    both flags still fire (the reason then gives that many)."""
    engine = make_engine(database_url)
    upgrade(engine)
    capped = AuditTrail(engine, flag_limits=FlagLimits(per_hour=2, per_day=3))
    try:
        flags = [flag_codes(requested(capped, "u9", "Leeds", f"c{i}")) for i in range(8)]
    finally:
        engine.dispose()
    assert flags[1] == set() and flags[2] == {"volume_hour"}
    assert flags[3] == flags[7] == {"volume_hour", "volume_day"}


def test_a_checkpoint_due_at_a_record_covers_that_record_even_when_others_wrote_since(
        database_url: str, tmp_path: Path):
    engine = make_engine(database_url)
    upgrade(engine)
    other = AuditTrail(engine, checkpoint_every=0)  # another broker process

    class Raced(AuditTrail):
        def checkpoint(self, upto=None):
            other.append("audit.verified", actor_id="other")  # lands before we sign
            return super().checkpoint(upto=upto)

    trail = Raced(engine, checkpoint_every=4)
    trail.sign_with(BrokerKeys.load(tmp_path / "key.json", "federator", create=True))
    try:
        fill(trail, 4)
        assert trail.latest().tree_size == 4
        assert trail.verify().ok
    finally:
        engine.dispose()


def test_sustained_volume_is_flagged_from_the_trail_hour_by_hour(database_url, tmp_path):
    """Three busy hours in a row raise ``sustained_volume`` (on SQLite and
    PostgreSQL, through the history query); a quiet hour between them does not."""
    engine = make_engine(database_url)
    upgrade(engine)
    trail = AuditTrail(engine, flag_limits=FlagLimits(
        per_hour=1000, per_day=1000, sustained_hours=3, sustained_per_hour=2))
    start = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
    at = [start]
    trail.clock = lambda: at[0]
    try:
        codes = []
        for minutes in (0, 10, 70, 80, 130, 140):  # two in each of three hours
            at[0] = start + timedelta(minutes=minutes)
            codes.append("sustained_volume" in flag_codes(requested(trail, "u1", "L", "c")))
        assert codes == [False, False, False, False, False, True]
        for minutes in (0, 10, 130, 140):  # u2: the middle hour is quiet
            at[0] = start + timedelta(minutes=minutes)
            assert "sustained_volume" not in flag_codes(requested(trail, "u2", "L", "d"))
    finally:
        engine.dispose()
