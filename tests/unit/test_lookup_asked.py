"""Who the trail says was asked, and lookups cut off by a crash: the pure rules
(receipt, subject access report, retry, when a lookup counts as cut off)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from federator.audit.asked import asked, asked_outcomes, not_asked
from federator.audit.subject_access import build_report
from federator.lookup.followups import LookupRecords, receipt, retry_authorities
from federator.lookup.interrupted import (
    MARGIN_S,
    interrupted_after_s,
    interrupted_fields,
    is_cut_off,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def requested(**extra: Any) -> dict[str, Any]:
    return {"seq": 10, "event": "lookup.requested", "lookup_id": "L1", "hash": "h10",
            "at": (NOW - timedelta(hours=1)).isoformat(), "actor_id": "me",
            "actor_role": "practitioner", "actor_organisation": "Leeds CS",
            "purpose": "Assessment", "basis_type": "consent", "child_pseudonym": "p1",
            "deadline_ms": 5000, "authorities": ["a", "b"],
            "not_asked": [{"id": "s", "reason": "suspended"},
                          {"id": "o", "reason": "circuit_open"}], **extra}


COMPLETED = {"seq": 12, "event": "lookup.completed", "lookup_id": "L1", "actor_id": "me",
             "child_pseudonym": "p1", "complete": False, "hash": "h12", "outcomes": [
                 {"id": "a", "outcome": "match"}, {"id": "b", "outcome": "timeout"},
                 {"id": "s", "outcome": "unavailable", "not_asked": "suspended"},
                 {"id": "o", "outcome": "unavailable", "not_asked": "circuit_open"}]}
INTERRUPTED = {"seq": 11, "event": "lookup.interrupted", "lookup_id": "L1",
               "actor_id": "me", "child_pseudonym": "p1", "authorities": ["a", "b"],
               "hash": "h11"}


def test_asked_and_not_asked_are_read_apart() -> None:
    assert asked(requested()) == ["a", "b"]
    assert not_asked(requested()) == {"s": "suspended", "o": "circuit_open"}
    assert asked_outcomes(requested(), COMPLETED) == {"a": "match", "b": "timeout"}
    # the completion's mark is enough (and a record from before not_asked was kept)
    old = requested(authorities=["a", "b", "s", "o"], not_asked=None)
    assert asked_outcomes(old, COMPLETED) == {"a": "match", "b": "timeout"}
    assert asked(old, COMPLETED) == ["a", "b"]


def test_the_receipt_names_those_asked_and_lists_the_others_apart() -> None:
    body = receipt(LookupRecords(requested(), COMPLETED), names={"s": "Paused CS"},
                   checkpoint=None, head_seq=15, checkpoint_every=1000)
    assert [(a["id"], a["outcome"]) for a in body["authorities"]] == [
        ("a", "match"), ("b", "timeout")]
    assert body["not_asked"] == [{"id": "s", "name": "Paused CS", "reason": "suspended"},
                                 {"id": "o", "name": "o", "reason": "circuit_open"}]
    assert body["interrupted"] is False


def test_the_receipt_of_an_interrupted_lookup_says_so() -> None:
    body = receipt(LookupRecords(requested(), None, INTERRUPTED), names={},
                   checkpoint=None, head_seq=15, checkpoint_every=1000)
    assert body["interrupted"] is True and body["complete"] is False
    assert [(a["id"], a["outcome"]) for a in body["authorities"]] == [
        ("a", "interrupted"), ("b", "interrupted")]
    assert [r["event"] for r in body["records"]] == ["lookup.requested",
                                                     "lookup.interrupted"]


def test_an_interrupted_lookup_can_be_retried_for_everyone_unanswered() -> None:
    first = LookupRecords(requested(), None, INTERRUPTED)
    assert retry_authorities(first, pseudonym="p1", now=NOW, window_s=86400) == {
        "a", "b", "s", "o"}


def test_subject_access_names_only_the_authorities_asked() -> None:
    report = build_report([requested(), COMPLETED], ["nhs_number"], "SAR-1", typed={"p1"})
    [item] = report["lookups"]
    assert item["authorities"] == [{"id": "a", "outcome": "match"},
                                   {"id": "b", "outcome": "timeout"}]
    cut = build_report([requested(), INTERRUPTED], ["nhs_number"], "SAR-1", typed={"p1"})
    assert cut["lookups"][0]["authorities"] == [{"id": "a", "outcome": "interrupted"},
                                                {"id": "b", "outcome": "interrupted"}]


def test_a_lookup_is_cut_off_only_past_the_longest_deadline_and_the_margin() -> None:
    after_s = interrupted_after_s(15000)
    assert after_s == 15 + MARGIN_S
    at = datetime.fromisoformat(requested()["at"])
    assert is_cut_off(requested(), now=at + timedelta(seconds=after_s + 1), after_s=after_s)
    assert not is_cut_off(requested(), now=at + timedelta(seconds=after_s - 1),
                          after_s=after_s)
    # its own deadline, when longer than today's maximum, is waited for too
    long = requested(deadline_ms=600_000)
    assert not is_cut_off(long, now=at + timedelta(seconds=after_s + 1), after_s=after_s)


def test_the_interrupted_record_names_those_asked_and_no_child() -> None:
    fields = interrupted_fields(requested())
    assert fields["authorities"] == ["a", "b"] and fields["requested_seq"] == 10
    assert fields["child_pseudonym"] == "p1" and "purpose" not in fields
