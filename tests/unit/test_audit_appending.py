"""The pure side of appending (federator.audit.appending): which checkpoints a
batch makes due, and a sealed record's row."""

from __future__ import annotations

from federator.audit.appending import multiples, sealed
from federator.audit.chain import GENESIS, canonical, record_hash
from federator.audit.redaction import seal


def test_checkpoints_due_are_the_multiples_a_batch_crosses() -> None:
    assert list(multiples(1, 24, 25)) == []
    assert list(multiples(24, 76, 25)) == [25, 50, 75]
    assert list(multiples(25, 25, 25)) == [25]
    assert list(multiples(26, 49, 25)) == []
    assert list(multiples(1, 100, 0)) == []


def test_a_sealed_record_is_chained_after_prev_and_keeps_its_entry() -> None:
    record = {"seq": 1, "at": "2026-12-03T10:00:00.000+00:00", "event": "lookup.requested",
              "actor_id": "u1", "purpose": "Assessment", "authorities": ["b", "a"],
              "flags": [{"flag": "scope_all", "reason": "r"}]}
    one = sealed(record, GENESIS, "e" * 32)
    hashed = seal(record)[0]
    assert one.row["hash"] == record_hash(GENESIS, one.row["body"])
    assert one.row["entry"] == "e" * 32 and one.row["prev_hash"] == GENESIS
    assert one.row["body"] != canonical(record)  # the purpose sealed by its salted hash
    assert set(hashed) - {"purpose"} <= set(__import__("json").loads(one.row["body"]))
    assert [a["authority_id"] for a in one.authorities] == ["a", "b"]
    assert one.flags == [{"seq": 1, "flag": "scope_all"}]
    assert one.record["purpose"] == "Assessment" and one.record["hash"] == one.hash
