"""The pure parts of retention and redaction: sealing free text by its salted hash,
opening it for readers and back, checking texts, the marks verify keeps, and how
verify words a pruned range."""

from __future__ import annotations

import json

from federator.audit.chain import GENESIS, canonical, record_hash, verify_chain
from federator.audit.marks import Marks
from federator.audit.merkle import leaf_hash
from federator.audit.redaction import (
    check_texts,
    commitment,
    open_record,
    redactable,
    seal,
    sealed_body,
    texts_of_view,
)
from federator.audit.retention import redaction_errors
from federator.audit.retention_cli import pruned_words

RECORD = {"seq": 1, "event": "lookup.requested", "purpose": "Worried about Mr Smith",
          "basis": {"type": "safeguarding", "justification": "Bruises"}}


def test_seal_takes_the_free_text_out_of_the_hashed_body_and_open_puts_it_back():
    hashed, texts = seal(RECORD)
    assert RECORD["basis"]["justification"] == "Bruises"  # the caller's record is untouched
    assert "purpose" not in hashed and hashed["basis"] == {"type": "safeguarding"}
    assert "Smith" not in canonical(hashed) and "Bruises" not in canonical(hashed)
    held = json.loads(texts)
    assert set(held) == set(hashed["sealed"]) == {"purpose", "basis.justification"}
    for path, entry in held.items():
        assert hashed["sealed"][path] == commitment(entry["salt"], entry["text"])
    again, _ = seal(RECORD)
    assert again["sealed"] != hashed["sealed"]  # a fresh salt each time: not guessable
    view = open_record(hashed, texts)
    assert view["purpose"] == RECORD["purpose"] and view["basis"] == RECORD["basis"]
    assert sealed_body(view) == hashed  # an export's record hashes as the trail's
    assert json.loads(texts_of_view(view)) == held
    assert check_texts(hashed, texts) == (None, [])
    assert redactable(view) == ["purpose", "basis.justification"]
    plain = {"seq": 3, "event": "x", "pruned": 1, "salts": 2, "redacted": 3, "hash": "h"}
    assert sealed_body(plain) == {"seq": 3, "event": "x", "pruned": 1, "salts": 2,
                                  "redacted": 3}  # a record without sealed text as it is
    assert seal({"seq": 2, "event": "registry.updated"}) == ({"seq": 2,
                                                               "event": "registry.updated"}, None)


def test_check_texts_names_each_way_a_text_can_be_wrong():
    hashed, texts = seal(RECORD)
    held = json.loads(texts)
    changed = {**held, "purpose": {**held["purpose"], "text": "Routine"}}
    assert check_texts(hashed, json.dumps(changed))[0] == (
        "the text of purpose does not match its sealed hash")
    gone = {k: v for k, v in held.items() if k != "purpose"}
    assert check_texts(hashed, json.dumps(gone))[0] == (
        "the text of purpose is gone, but not through a redaction")
    assert check_texts(hashed, None)[0] == ("the text of purpose is gone, but not through "
                                            "a redaction")
    marked = {**held, "purpose": {"redacted": 7}}
    assert check_texts(hashed, json.dumps(marked)) == (None, [(7, "purpose")])
    extra = {**held, "basis.reference": {"salt": "00", "text": "x"}}
    assert "basis.reference is stored, but the record does not seal it" in (
        check_texts(hashed, json.dumps(extra))[0])
    assert check_texts({"seq": 1}, texts)[0] == ("free text is stored beside a record that "
                                                "seals none")
    view = open_record(hashed, json.dumps(marked))
    assert view["purpose"] is None and view["redacted"] == {"purpose": 7}
    assert redactable(view) == ["basis.justification"]


def chain(records: list[dict], texts: dict[int, str | None]) -> list[dict]:
    rows, prev = [], GENESIS
    for record in records:
        body = canonical(record)
        digest = record_hash(prev, body)
        rows.append({"seq": record["seq"], "body": body, "prev_hash": prev, "hash": digest,
                     "texts": texts.get(record["seq"])})
        prev = digest
    return rows


def pruned(row: dict) -> dict:
    return {**row, "body": "", "texts": None, "leaf": leaf_hash(row["body"].encode()).hex()}


def test_verify_chain_accepts_a_pruned_range_only_under_an_audit_pruned_record():
    records = [{"seq": i, "event": "lookup.requested"} for i in (1, 2, 3)]
    mark = {"seq": 4, "event": "audit.pruned", "first": 1, "last": 2, "newly": [1, 2],
            "at": "2026-12-03T12:00:00.000+00:00", "actor_id": "cli:ops"}
    rows = chain([*records, mark], {})
    rows[0], rows[1] = pruned(rows[0]), pruned(rows[1])
    verdict = verify_chain(rows, marks=Marks())
    assert verdict.ok and verdict.count == 4
    assert verdict.pruned == ({"first": 1, "last": 2, "prunes": [
        {"first": 1, "last": 2, "on": mark["at"], "by": "cli:ops", "seq": 4}]},)
    assert not verify_chain(rows).ok  # without marks a pruned body is a changed body
    unmarked = chain(records, {})
    unmarked[1] = pruned(unmarked[1])
    verdict = verify_chain(unmarked, marks=Marks())
    assert not verdict.ok and verdict.first_bad_seq == 2
    assert "no audit.pruned record covers it" in verdict.reason
    # a walk cut short (--to) cannot see the record after it
    assert verify_chain(unmarked, marks=Marks(), complete=False).ok
    no_leaf = [*rows[:1], {**rows[1], "leaf": None}, *rows[2:]]
    assert verify_chain(no_leaf, marks=Marks()).reason == (
        "its body is gone and its leaf hash with it")


def test_a_redaction_marker_must_name_a_later_audit_redacted_record_of_that_field():
    hashed, texts = seal({**RECORD, "seq": 1})
    held = json.loads(texts)
    marked = json.dumps({**held, "purpose": {"redacted": 2}})
    good = {"seq": 2, "event": "audit.redacted", "record": 1, "field": "purpose"}
    assert verify_chain(chain([hashed, good], {1: marked}), marks=Marks()).ok
    wrong_field = {**good, "field": "basis.justification"}
    verdict = verify_chain(chain([hashed, wrong_field], {1: marked}), marks=Marks())
    assert not verdict.ok and verdict.first_bad_seq == 1
    assert "marked redacted by record 2, which does not say so" in verdict.reason
    verdict = verify_chain(chain([hashed], {1: marked}), marks=Marks())
    assert "marked redacted by record 2, which does not exist" in verdict.reason
    early = json.dumps({**held, "purpose": {"redacted": 1}})
    assert "which is not after it" in verify_chain(chain([hashed], {1: early}),
                                                   marks=Marks()).reason


def test_redaction_errors_and_the_pruned_words():
    assert redaction_errors(3, "purpose", "Names a neighbour") == {}
    assert set(redaction_errors(True, "name", None)) == {"record", "field", "reason"}
    assert pruned_words([{"first": 1, "last": 5000, "prunes": [
        {"first": 1, "last": 5000, "on": "2026-12-03", "by": "cli:ops"}]}], 5210) == (
        "records 1–5,000 pruned (1–5,000 on 2026-12-03 by cli:ops); 5,001–5,210 verified "
        "in full")
    assert pruned_words((), 10) == ""
