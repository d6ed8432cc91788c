"""What the integrator refuses to make a record of (``queue_checks``), pure."""

from __future__ import annotations

import pytest

from federator.audit.queue_checks import RESERVED, Rejected, decode, rejection
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


def test_an_escaped_backslash_before_u0000_is_not_a_nul():
    assert isinstance(decode(AT, "auth.signed_in", encode({"purpose": "C:\\u0000"})), dict)


def test_the_rejection_names_what_was_queued_by_its_hash_only():
    record = rejection(7, "Ann Smith", "Ann Smith", '{"child": "Ann Smith"}', "fields: x", AT)
    assert "Ann" not in repr(record)
    assert record["queued_event"] is None and record["queued_at"] is None
    assert record["queue_id"] == 7 and len(record["fields_sha256"]) == 64
    assert [f["flag"] for f in record["flags"]] == ["entry_rejected"]
