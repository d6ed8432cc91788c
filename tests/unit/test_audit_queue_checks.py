"""What the integrator refuses to make a record of (``queue_checks``), pure."""

from __future__ import annotations

import pytest

from federator.audit.marks import Marks
from federator.audit.queue_checks import (
    RESERVED,
    Rejected,
    _depth,
    decode,
    problem_at,
    rejection,
    sha256_of,
)
from federator.audit.queue_writer import encode

AT = "2026-12-04T10:00:00.000+00:00"


def test_what_the_broker_queues_decodes_to_its_fields():
    fields = {"actor_id": "jo", "basis": {"type": "consent"}, "authorities": ["leeds"],
              "flags": [{"flag": "own_family_name", "reason": "…"}], "purpose": "Ann’s school"}
    assert decode(AT, "lookup.requested", encode(fields)) == {
        "at": AT, "event": "lookup.requested", **fields}


@pytest.mark.parametrize("event", ["lookup.requested", "audit.review.noted",
                                   "registry.something_newer"])
def test_an_event_of_a_newer_broker_is_not_rejected(event):
    """Checked by shape: during a rolling upgrade an older integrator meets it."""
    assert isinstance(decode(AT, event, "{}"), dict)


@pytest.mark.parametrize("key", RESERVED)
def test_an_entry_may_not_bring_what_the_integrator_sets(key):
    found = decode(AT, "auth.signed_in", encode({key: 1}))
    assert found == Rejected(f"fields.{key}: set by the integrator, not by an entry")


def test_an_emoji_is_a_surrogate_pair_in_the_queue_and_is_not_rejected():
    assert decode(AT, "auth.signed_in", encode({"purpose": "😀"}))["purpose"] == "😀"


def test_an_escaped_backslash_before_u0000_is_not_a_nul():
    assert isinstance(decode(AT, "auth.signed_in", encode({"purpose": "C:\\u0000"})), dict)


def test_the_rejection_names_what_was_queued_by_its_hash_only():
    record = rejection(7, "Ann Smith", "Ann Smith", sha256_of('{"child": "Ann Smith"}'),
                       "fields: x", AT)
    assert "Ann" not in repr(record)
    assert record["queued_event"] is None and record["queued_at"] is None
    assert record["queue_id"] == 7 and len(record["fields_sha256"]) == 64
    assert [f["flag"] for f in record["flags"]] == ["entry_rejected"]


def test_depth_counts_brackets_outside_strings_only():
    assert _depth('{"a": "[[[{{\\"[[", "b": [[1]]}') == 3
    assert _depth("[" * 40 + "]" * 40) == 40


def test_a_lookup_of_many_authorities_is_not_too_deep():
    outcomes = [{"id": f"a{i}", "outcome": "match", "record_ref": "r"} for i in range(150)]
    assert isinstance(decode(AT, "lookup.completed", encode({"outcomes": outcomes})), dict)


def test_a_prune_may_cover_only_records_before_its_own():
    assert problem_at({"event": "audit.pruned", "first": 1, "last": 9}, 10) is None
    assert problem_at({"event": "audit.pruned", "first": 1, "last": 10}, 10) is not None


def test_verification_reads_a_prune_with_a_malformed_range_as_its_own_range():
    """A trail written before the queue's checks, or by an insider: a verdict, not
    an IndexError."""
    marks = Marks()
    assert marks.record(5, {"event": "audit.pruned", "first": 1, "last": 4, "newly": []},
                        None) is None
    assert (marks.prunes[0]["first"], marks.prunes[0]["last"]) == (1, 4)
