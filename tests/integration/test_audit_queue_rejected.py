"""A queued entry that cannot become a record is set aside, not retried for ever
(PostgreSQL). As an insider with write access to ``audit_queue`` (or a bug): one
malformed row used to fail every integrator's batch, so the trail stopped
growing behind it while lookups went on queueing, and every auditor's read and
every other append failed. Now the row is moved whole to
``audit_queue_rejected`` and an ``audit.entry_rejected`` record, flagged for an
alert, takes its place in the chain; the entries around it are integrated as
ever. Real PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select, text
from support.services import postgres_schema

from federator.audit import queue_writer
from federator.audit.tables import audit_queue, audit_queue_rejected
from federator.audit.trail import AuditTrail, AuditUnavailable
from federator.storage import audit_records, make_engine, upgrade

pytestmark = pytest.mark.integration

FIELDS = {"actor_id": "jo", "actor_organisation": "Leeds", "basis": {"type": "consent"},
          "scope": "targeted", "child_pseudonym": "ab" * 32, "authorities": ["leeds-cs"]}
AT = "2026-12-04T10:00:00.000+00:00"
#: What an insider might write into the queue, and what the rejection says
POISONS = {
    "not JSON": (AT, "lookup.requested", '{"actor_id": "Ann Smith"', "fields: not JSON"),
    "not an object": (AT, "lookup.requested", '["Ann Smith"]', "fields: not a JSON object"),
    "a NUL": (AT, "lookup.requested", '{"purpose": "Ann\\u0000Smith"}',
              "fields: hold a NUL character"),
    "an unpaired surrogate": (AT, "lookup.requested", '{"actor_id": "Ann\\ud800Smith"}',
                              "fields: hold an unpaired surrogate"),
    "a time without its offset": ("2026-12-04T10:00:00", "lookup.requested", "{}", "at: "),
    "not a time": ("Ann Smith", "lookup.requested", "{}", "at: "),
    "not an event": (AT, "Ann Smith", "{}", "event: "),
    "the integrator's own event": (AT, "audit.entry_rejected", "{}", "event: "),
    "its own event in its fields": (AT, "lookup.requested", '{"event": "auth.signed_in"}',
                                    "fields.event: "),
    "a filter column not text": (AT, "lookup.requested", '{"actor_id": ["Ann Smith"]}',
                                 "fields.actor_id: not text"),
    "a filter column too long": (AT, "lookup.requested",
                                 json.dumps({"child_pseudonym": "Ann Smith" * 10}),
                                 "fields.child_pseudonym: longer than 64"),
    "flags not a list": (AT, "lookup.requested", '{"flags": "Ann Smith"}', "fields.flags: "),
    "a flag name longer than its column": (
        AT, "lookup.requested", json.dumps({"flags": [{"flag": "ann_smith" * 5}]}),
        "fields.flags: "),
    "a time at the calendar's edge": ("0001-01-01T00:00:00.000+00:00", "lookup.requested",
                                      json.dumps(FIELDS), "at: "),
    "a time in another zone": ("2026-12-04T10:00:00.000+01:00", "lookup.requested",
                               json.dumps(FIELDS), "at: "),
    "nested deeper than any record": (AT, "lookup.requested",
                                      '{"a": ' + "[" * 5000 + "]" * 5000 + "}",
                                      "fields: nested more than 32 deep"),
    "a prune without its range": (AT, "audit.pruned", '{"actor_id": "Ann Smith"}',
                                  "fields.first, fields.last: "),
    "a prune's range not two numbers": (AT, "audit.pruned", '{"first": 1, "last": 1, '
                                        '"newly": []}', "fields.newly: "),
    "a prune of records after its own": (AT, "audit.pruned", '{"first": 1, "last": 999}',
                                         "fields.last: a prune of records after its own"),
    "a redaction, never queued": (AT, "audit.redacted", '{"record": 1, "field": "purpose"}',
                                  "event: audit.redacted is never queued"),
    "too big to read": (AT, "lookup.requested", json.dumps({"purpose": "Ann Smith" * 120_000}),
                        "fields: longer than 1,000,000 characters"),
    "what flagging cannot read": (AT, "lookup.requested",
                                  json.dumps({**FIELDS, "basis": "Ann Smith"}),
                                  "fields: could not be flagged or sealed (AttributeError)"),
}


@pytest.fixture
def trail() -> Iterator[AuditTrail]:
    with postgres_schema() as url:
        engine = make_engine(url)
        upgrade(engine)
        trail = AuditTrail(engine)
        trail.sequencer.wake = lambda: None  # integrated only when a test says
        yield trail
        trail.sequencer.close()
        engine.dispose()


def queue_by_hand(trail: AuditTrail, at: str, event: str, fields: str,
                  entry: str | None = None) -> int:
    """An insider's INSERT into the queue; the row's id."""
    with trail.engine.begin() as conn:
        return int(conn.execute(
            audit_queue.insert().values(entry=entry or uuid.uuid4().hex, at=at, event=event,
                                        fields=fields).returning(audit_queue.c.id)
        ).scalar_one())


def chain(trail: AuditTrail) -> list[dict]:
    return trail.records(limit=1000)


def set_aside(trail: AuditTrail) -> list[dict]:
    with trail.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(
            select(audit_queue_rejected).order_by(audit_queue_rejected.c.queue_id))]


@pytest.mark.parametrize("poison", list(POISONS))
def test_a_malformed_entry_is_set_aside_and_the_entries_around_it_recorded(trail, poison):
    at, event, fields, reason = POISONS[poison]
    trail.enqueue("lookup.requested", lookup_id="before", **FIELDS)
    bad = queue_by_hand(trail, at, event, fields)
    trail.enqueue("lookup.requested", lookup_id="after", **FIELDS)

    assert trail.integrate_pending() == 3
    first, rejected, last = chain(trail)
    assert (first["lookup_id"], last["lookup_id"]) == ("before", "after")
    assert rejected["event"] == "audit.entry_rejected"
    assert rejected["queue_id"] == bad
    assert rejected["reason"].startswith(reason), rejected["reason"]
    assert rejected["fields_sha256"] == hashlib.sha256(fields.encode()).hexdigest()
    assert [f["flag"] for f in rejected["flags"]] == ["entry_rejected"]
    # named by field and hash, never quoted: nothing of what was queued is in the record
    body = json.dumps(rejected)
    assert "Ann" not in body and "Smith" not in body
    # the row itself kept, as it was, beside the record that stands for it
    [kept] = set_aside(trail)
    assert (kept["queue_id"], kept["at"], kept["event"], kept["fields"], kept["seq"]) == (
        bad, at, event, fields, rejected["seq"])
    assert kept["reason"] == rejected["reason"]
    with trail.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(audit_queue)).scalar_one() == 0
    assert trail.verify().ok
    # and the trail goes on
    trail.append("auth.signed_in", actor_id="jo")
    assert chain(trail)[-1]["event"] == "auth.signed_in"


def test_an_entry_whose_id_is_already_a_record_is_set_aside(trail):
    trail.enqueue("lookup.requested", lookup_id="first", **FIELDS)
    trail.integrate_pending()
    with trail.engine.connect() as conn:
        taken = conn.execute(select(audit_records.c.entry)).scalar_one()
    queue_by_hand(trail, AT, "lookup.requested", json.dumps(FIELDS), entry=taken)
    trail.enqueue("lookup.requested", lookup_id="next", **FIELDS)

    assert trail.integrate_pending() == 2
    _, rejected, after = chain(trail)
    assert rejected["reason"] == "entry: its id is already a record's"
    assert after["lookup_id"] == "next"
    with trail.engine.connect() as conn:  # the record already holding that id keeps it
        assert conn.execute(select(audit_records.c.seq).where(
            audit_records.c.entry == taken)).scalar_one() == 1
    assert trail.verify().ok


def test_the_sequencer_integrates_past_a_malformed_entry(trail):
    """In the background, as a broker runs: the lookups queued after the row are
    in the chain within moments, not stuck behind it."""
    queue_by_hand(trail, AT, "lookup.requested", "{")
    del trail.sequencer.wake  # the class's own again: integrate in the background
    for i in range(5):
        trail.enqueue("lookup.requested", lookup_id=f"s{i}", **FIELDS)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with trail.engine.connect() as conn:
            if conn.execute(select(func.count()).select_from(audit_records)).scalar_one() == 6:
                break
        time.sleep(0.05)
    events = [r["event"] for r in chain(trail)]
    assert events == ["audit.entry_rejected"] + ["lookup.requested"] * 5


def test_a_writer_whose_own_entry_is_rejected_is_told_so(trail, monkeypatch):
    """An audited action must not go on unaudited: if the broker itself queued
    something the integrator cannot record (a bug), the append fails, and the
    trail says what happened in its place."""
    monkeypatch.setattr(queue_writer, "encode", lambda fields: '["not an object"]')
    with pytest.raises(AuditUnavailable, match="rejected"):
        trail.append("auth.signed_in", actor_id="jo")
    monkeypatch.undo()
    trail.append("auth.signed_in", actor_id="jo")
    assert [r["event"] for r in chain(trail)] == ["audit.entry_rejected", "auth.signed_in"]


def test_an_auditors_read_is_not_failed_by_a_malformed_entry(trail):
    """Before, ``records`` (what every auditor's page and API reads through)
    raised for as long as the row stayed queued."""
    queue_by_hand(trail, AT, "lookup.requested", '{"actor_id": 5}')
    assert [r["event"] for r in trail.records()] == ["audit.entry_rejected"]


def test_a_batch_without_rejections_writes_nothing_aside(trail):
    for i in range(3):
        trail.enqueue("lookup.requested", lookup_id=f"ok{i}", **FIELDS)
    trail.integrate_pending()
    assert set_aside(trail) == []
    with trail.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_flags "
                                 "WHERE flag = 'entry_rejected'")).scalar_one() == 0


def test_the_brokers_own_writer_refuses_what_would_be_set_aside(trail):
    """Checked before queueing (``queue_checks.problem``): the writer is told, and
    nothing is queued to become a rejection."""
    for fields in ({"actor_id": "u" * 201}, {"purpose": "a\ud800"}, {"seq": 3},
                   {"flags": [{"flag": "x" * 41}]}):
        with pytest.raises(AuditUnavailable, match="fields"):
            trail.enqueue("lookup.requested", lookup_id="w", **fields)
    with trail.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(audit_queue)).scalar_one() == 0


def test_rows_planted_in_the_set_aside_table_do_not_stop_a_rejection(trail):
    """The table has no key an insider could take first."""
    with trail.engine.begin() as conn:
        conn.execute(audit_queue_rejected.insert().values(
            queue_id=1, entry="x", at=AT, event="lookup.requested", fields="{}", seq=1,
            reason="planted"))
    queue_by_hand(trail, AT, "lookup.requested", "{")
    assert [r["event"] for r in chain(trail)] == ["audit.entry_rejected"]
