"""The pure side of appending (federator.audit.appending): how a batch of queued
entries is split so each record's flags count every record before it, which
checkpoints a batch makes due, and a sealed record's row."""

from __future__ import annotations

from datetime import timedelta

from federator.audit.appending import independent_runs, multiples, run_organisations, sealed
from federator.audit.chain import GENESIS, canonical, record_hash
from federator.audit.redaction import seal


def requested(actor: str, child: str) -> dict:
    return {"event": "lookup.requested", "actor_id": actor, "child_pseudonym": child}


def test_a_run_ends_where_a_record_shares_an_actor_with_an_earlier_one() -> None:
    batch = [requested("a", "1"), requested("b", "2"), requested("c", "1"),  # child 1 again
             requested("d", "3"), requested("d", "4"),  # actor d again
             {"event": "registry.changed", "actor_id": "d"},  # not in the flag history
             requested("e", "5")]
    assert [list(r) for r in independent_runs(batch)] == [[0, 1, 2, 3], [4, 5, 6]]


def test_the_childs_organisations_in_the_run_before_a_record_count() -> None:
    at = "2026-12-03T10:00:00.000+00:00"

    def one(org: str, child: str = "1", when: str = at, event: str = "lookup.requested"
            ) -> dict:
        return {"event": event, "child_pseudonym": child, "actor_organisation": org,
                "at": when}

    earlier = [one("Leeds"), one("York", child="2"),
               one("Hull", when="2026-11-30T09:59:59.999+00:00"),  # 72 h and a moment before
               one("Bath", event="lookup.completed"), one("")]
    assert run_organisations(one("Wakefield"), earlier, timedelta(hours=72)) == {"Leeds"}
    assert run_organisations(one("Wakefield"), earlier, timedelta(hours=80)) == {"Leeds", "Hull"}
    assert run_organisations({**one("Leeds"), "child_pseudonym": None}, earlier,
                             timedelta(hours=72)) == frozenset()


def test_a_completion_shares_the_authorities_references_it_matched() -> None:
    def completed(actor: str, ref: str) -> dict:
        return {"event": "lookup.completed", "actor_id": actor, "child_pseudonym": actor,
                "outcomes": [{"id": "leeds", "outcome": "match", "record_ref": ref}]}

    batch = [completed("a", "r1"), completed("b", "r2"), completed("c", "r1")]
    assert [list(r) for r in independent_runs(batch)] == [[0, 1], [2]]
    assert independent_runs([]) == []


def test_an_unmatched_completion_reads_nothing_and_joins_its_requests_run() -> None:
    def completed(actor: str, outcome: str = "no_match") -> dict:
        return {"event": "lookup.completed", "actor_id": actor, "child_pseudonym": "1",
                "outcomes": [{"id": "leeds", "outcome": outcome, "record_ref": "r1"}]}

    # requested, completed (no match): one run; the next request reads the completion
    batch = [requested("a", "1"), completed("a"), requested("a", "2"), completed("a"),
             completed("a", outcome="match")]  # a match reads the actor's history
    assert [list(r) for r in independent_runs(batch)] == [[0, 1], [2, 3], [4]]


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
