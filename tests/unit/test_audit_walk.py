"""The fast walk (federator.audit.walk) makes every check the record-by-record one
did: rows as the database reader gives them (tuples, bodies as bytes) and as
mappings, each kind of tampering named, sealed texts checked on the fast path
exactly as ``marks.record`` checks them, and bodies the stdlib reads but orjson
refuses still read."""

from __future__ import annotations

import json

import pytest

from federator.audit.chain import GENESIS, MIRRORED, canonical, record_hash
from federator.audit.marks import Marks
from federator.audit.redaction import seal
from federator.audit.walk import ROW, as_row, walk


def trail(n: int) -> list[tuple]:
    """Rows as ``reading.trail_rows`` gives them: ROW order, body as bytes, every
    filter column, the free text sealed beside the body."""
    rows, prev = [], GENESIS
    for seq in range(1, n + 1):
        record = {"seq": seq, "at": f"2026-11-20T10:00:{seq % 60:02d}.000+00:00",
                  "event": "lookup.requested", "actor_id": f"user-{seq}",
                  "actor_organisation": "Leeds", "basis_type": "consent",
                  "basis": {"type": "consent", "reference": "REF-1"},
                  "purpose": "Assessment under section 17", "child_pseudonym": "ab" * 32}
        hashed, texts = seal(record)
        body = canonical(hashed)
        digest = record_hash(prev, body)
        row = {"seq": seq, "body": body.encode(), "prev_hash": prev, "hash": digest,
               "texts": texts, "leaf": None, **{k: hashed.get(k) for k in MIRRORED}}
        rows.append(tuple(row[c] for c in ROW))
        prev = digest
    return rows


def run(rows: list[tuple]):
    return walk(iter(rows), marks=Marks())[0]


def changed(row: tuple, column: str, value) -> tuple:
    out = list(row)
    out[ROW.index(column)] = value
    return tuple(out)


def test_a_good_trail_passes_as_tuples_and_as_mappings():
    rows = trail(12)
    assert run(rows).ok and run(rows).count == 12
    mappings = [{**dict(zip(ROW, r, strict=True)), "body": r[1].decode()} for r in rows]
    assert walk(map(as_row, mappings), marks=Marks())[0].ok


@pytest.mark.parametrize("column", [c for c in MIRRORED])
def test_a_filter_column_changed_alone_is_named(column):
    rows = trail(5)
    rows[2] = changed(rows[2], column, "someone else")
    verdict = run(rows)
    assert not verdict.ok and verdict.first_bad_seq == 3
    assert verdict.reason == f"column {column} no longer matches the hashed record"


def test_a_sealed_text_changed_removed_or_added_is_named():
    rows = trail(4)
    texts = json.loads(rows[1][4])
    texts["purpose"]["text"] = "Something else"
    verdict = run([*rows[:1], changed(rows[1], "texts", json.dumps(texts)), *rows[2:]])
    assert verdict.first_bad_seq == 2
    assert verdict.reason == "the text of purpose does not match its sealed hash"
    gone = json.loads(rows[1][4])
    del gone["purpose"]
    verdict = run([*rows[:1], changed(rows[1], "texts", json.dumps(gone)), *rows[2:]])
    assert verdict.reason == "the text of purpose is gone, but not through a redaction"
    extra = {**json.loads(rows[1][4]), "justification": {"salt": "00", "text": "x"}}
    verdict = run([*rows[:1], changed(rows[1], "texts", json.dumps(extra)), *rows[2:]])
    assert verdict.reason == ("free text for justification is stored, but the record does "
                              "not seal it")
    verdict = run([*rows[:1], changed(rows[1], "texts", None), *rows[2:]])
    assert verdict.reason == "the text of basis.reference is gone, but not through a redaction"
    verdict = run([*rows[:1], changed(rows[1], "texts", "not json"), *rows[2:]])
    assert verdict.reason == "its free text is not readable"


def test_a_redaction_marker_goes_to_the_marks():
    rows = trail(3)
    texts = json.loads(rows[0][4])
    texts["purpose"] = {"redacted": 9}  # no record 9: the marks say so at the end
    verdict = run([changed(rows[0], "texts", json.dumps(texts)), *rows[1:]])
    assert verdict.first_bad_seq == 1
    assert verdict.reason == ("the text of purpose is marked redacted by record 9, which "
                              "does not exist")


def test_the_body_hash_link_and_numbers_are_checked():
    rows = trail(6)
    assert run([*rows[:3], changed(rows[3], "body", rows[3][1] + b" ")]).reason == (
        "record content does not match its hash")
    assert run([*rows[:3], changed(rows[3], "prev_hash", "1" * 64)]).reason == (
        "link to the previous record is broken")
    assert run([*rows[:3], *rows[4:]]).reason == "record 4 is missing"
    assert run([*rows[:3], rows[2]]).reason == "record 3 appears again where record 4 belongs"
    bad = "\u00e9" * 64  # not ASCII: cannot be the previous hash
    assert run([*rows[:3], changed(rows[3], "prev_hash", bad)]).reason == (
        "link to the previous record is broken")


def test_a_body_the_stdlib_reads_and_orjson_refuses_is_still_read():
    body = '{"event":"x","n":NaN,"seq":1}'  # json.dumps writes NaN; orjson refuses it
    row = (1, body.encode(), GENESIS, record_hash(GENESIS, body), None, None,
           *("x" if k == "event" else None for k in MIRRORED))
    assert walk(iter([row]), marks=Marks())[0].ok
    not_json = b'{"at":"t","event":"x","seq":1'
    row = (1, not_json, GENESIS, record_hash(GENESIS, not_json.decode()), None, None,
           *(None for _ in MIRRORED))
    assert walk(iter([row]), marks=Marks())[0].reason == "record body is not JSON"
