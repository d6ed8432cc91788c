"""Redaction: a record's sealed free text goes through ``retention.redact`` (an
``audit.redacted`` record first), verify still passes and the record says who
redacted it and why; an insider changing the text or its salted hash, or
removing a text any other way, fails verify. SQLite and PostgreSQL, real."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError
from support.insider import insider

from federator.audit.chain import canonical, record_hash
from federator.audit.queries import get_record
from federator.audit.redaction import commitment
from federator.audit.retention import RetentionError, redact
from federator.audit.trail import AuditTrail
from federator.signing import BrokerKeys
from federator.storage import audit_records, make_engine, upgrade

pytestmark = pytest.mark.integration

AUDITOR = {"actor_id": "aud-1", "actor_role": "auditor"}


@pytest.fixture
def trail(database_url: str, tmp_path: Path):
    engine = make_engine(database_url)
    upgrade(engine)
    trail = AuditTrail(engine, checkpoint_every=3)
    trail.sign_with(BrokerKeys.load(tmp_path / "key.json", "federator", create=True))
    for i in range(2):
        trail.append("lookup.requested", lookup_id=f"l{i}", actor_id="p1", child_pseudonym="c1",
                     purpose=f"Worried about attendance {i}", basis_type="safeguarding",
                     basis={"type": "safeguarding", "justification": f"Mother's new partner {i}"},
                     authorities=["leeds"])
    yield trail
    engine.dispose()


def row(trail: AuditTrail, seq: int) -> dict:
    with trail.engine.connect() as conn:
        return dict(conn.execute(select(audit_records).where(
            audit_records.c.seq == seq)).mappings().one())


def test_new_records_hold_their_free_text_by_its_salted_hash(trail):
    stored = row(trail, 1)
    body, texts = json.loads(stored["body"]), json.loads(stored["texts"])
    assert "purpose" not in body and "justification" not in body["basis"]
    assert "Worried" not in stored["body"] and "partner" not in stored["body"]
    assert stored["purpose"] is None  # the filter column holds no free text either
    entry = texts["basis.justification"]
    assert entry["text"] == "Mother's new partner 0" and len(entry["salt"]) == 32
    assert body["sealed"]["basis.justification"] == commitment(entry["salt"], entry["text"])
    view = get_record(trail.engine, 1)
    assert view["purpose"] == "Worried about attendance 0"
    assert view["basis"] == {"type": "safeguarding", "justification": "Mother's new partner 0"}
    assert trail.records(lookup_id="l0")[0]["purpose"] == "Worried about attendance 0"


def test_redact_then_verify_passes_and_the_record_says_who_and_why(trail):
    done = redact(trail, 1, "basis.justification", "  Names a third party  ", AUDITOR)
    assert done == {"record": 1, "field": "basis.justification", "redaction": 3,
                    "reason": "Names a third party"}
    stored = row(trail, 1)
    assert "partner" not in (stored["texts"] or "")
    assert json.loads(stored["texts"])["basis.justification"] == {"redacted": 3}
    view = get_record(trail.engine, 1)
    assert view["basis"]["justification"] is None
    assert view["purpose"] == "Worried about attendance 0"  # the other field stays
    (note,) = view["redactions"]
    assert note["field"] == "basis.justification" and note["by"] == "aud-1"
    assert note["reason"] == "Names a third party" and note["seq"] == 3 and note["at"]
    audit = get_record(trail.engine, 3)
    assert audit["event"] == "audit.redacted" and audit["record"] == 1
    verdict = trail.verify()
    assert verdict.ok, verdict
    assert verdict.count == 3 and trail.latest().tree_size == 3  # its checkpoint checked
    with pytest.raises(RetentionError) as caught:
        redact(trail, 1, "basis.justification", "again", AUDITOR)
    assert caught.value.errors == {"field": "The basis.justification of record 1 was "
                                            "redacted already (record 3)."}


@pytest.mark.parametrize("change", ["text", "salt", "sealed_hash", "removed", "marker"])
def test_an_insider_changing_a_text_or_its_hash_fails_verify(trail, change):
    redact(trail, 2, "purpose", "Not needed", AUDITOR)  # record 3: audit.redacted of 2
    stored = row(trail, 1)
    texts, body = json.loads(stored["texts"]), json.loads(stored["body"])
    values: dict = {}
    if change == "text":
        texts["purpose"]["text"] = "Routine check"
    elif change == "salt":
        texts["purpose"]["salt"] = "0" * 32
    elif change == "removed":
        del texts["purpose"]
    elif change == "marker":  # claims the redaction record 3, which names record 2
        texts["purpose"] = {"redacted": 3}
    if change == "sealed_hash":  # rehashed too, so only the seal check can tell
        body["sealed"]["purpose"] = commitment("0" * 32, "Routine check")
        texts["purpose"] = {"salt": "0" * 32, "text": "x"}
        values = {"body": canonical(body), "hash": record_hash(stored["prev_hash"],
                                                                canonical(body))}
    with insider(trail.engine) as conn:
        conn.execute(update(audit_records).where(audit_records.c.seq == 1).values(
            texts=json.dumps(texts), **values))
    verdict = trail.verify()
    assert not verdict.ok and verdict.first_bad_seq == 1
    expected = {"text": "does not match its sealed hash", "salt": "does not match its sealed hash",
                "sealed_hash": "does not match its sealed hash",
                "removed": "is gone, but not through a redaction",
                "marker": "which does not say so"}[change]
    assert expected in verdict.reason


def test_the_triggers_let_through_only_a_redaction_backed_by_its_record(trail):
    stored = row(trail, 1)
    texts = json.loads(stored["texts"])
    texts["purpose"] = {"redacted": 2}  # record 2 is a lookup, not a redaction
    with pytest.raises(DBAPIError) as caught, trail.engine.begin() as conn:
        conn.execute(update(audit_records).where(audit_records.c.seq == 1).values(
            texts=json.dumps(texts)))
    assert "append-only: UPDATE on audit_records is refused" in str(caught.value.orig)
    done = redact(trail, 1, "purpose", "Not needed", AUDITOR)
    # the path taken once: the same UPDATE shape cannot swap the text for another
    with pytest.raises(DBAPIError), trail.engine.begin() as conn:
        conn.execute(text("UPDATE audit_records SET texts = :t WHERE seq = 1"),
                     {"t": json.dumps({**json.loads(row(trail, 1)["texts"]),
                                       "basis.justification": {"salt": "0" * 32,
                                                               "text": "Other"}})})
    with pytest.raises(DBAPIError), trail.engine.begin() as conn:
        conn.execute(text("UPDATE audit_records SET texts = NULL WHERE seq = 1"))
    assert json.loads(row(trail, 1)["texts"])["purpose"] == {"redacted": done["redaction"]}
    assert trail.verify().ok


def test_redaction_errors_name_the_field(trail):
    cases = [
        ((0, "purpose", "x"), "record", "Give the record's number"),
        ((1, "name", "x"), "field", "Give the field to redact: one of purpose"),
        ((1, "purpose", " "), "reason", "Give the reason"),
        ((1, "purpose", "x" * 501), "reason", "at most 500"),
        ((1, "purpose", "a\nb"), "reason", "one line"),
        ((99, "purpose", "x"), "record", "There is no record 99."),
        ((1, "justification", "x"), "field", "Record 1 holds no justification; it holds "
                                             "basis.justification, purpose."),
    ]
    for (seq, field, reason), key, words in cases:
        with pytest.raises(RetentionError) as caught:
            redact(trail, seq, field, reason, AUDITOR)
        assert key in caught.value.errors and words in caught.value.errors[key], caught.value
    old = trail.append("registry.updated", actor_id="admin", endpoint="e1")  # seals nothing
    with pytest.raises(RetentionError) as caught:
        redact(trail, old["seq"], "purpose", "x", AUDITOR)
    assert "record format 1" in caught.value.errors["field"]
    assert "by pruning" in caught.value.errors["field"]
