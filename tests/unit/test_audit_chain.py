"""The audit trail's hash chain: canonical encoding, record hashes, verification."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federator.audit.chain import GENESIS, Verdict, canonical, record_hash, verify_chain


def build(n: int, *, start_seq: int = 1, start_prev: str = GENESIS) -> list[dict]:
    """Rows as the trail stores them: seq, body (canonical JSON holding seq), prev_hash, hash."""
    rows, prev = [], start_prev
    for seq in range(start_seq, start_seq + n):
        body = canonical({"seq": seq, "at": f"2026-11-20T10:00:{seq % 60:02d}.000+00:00",
                          "event": "lookup.requested", "actor_id": f"user-{seq}",
                          "purpose": "Assessment under section 17", "child_pseudonym": "ab" * 32})
        digest = record_hash(prev, body)
        rows.append({"seq": seq, "body": body, "prev_hash": prev, "hash": digest})
        prev = digest
    return rows


def forge(seq: int, prev: str, **fields) -> dict:
    body = canonical({"seq": seq, "event": "lookup.requested", **fields})
    return {"seq": seq, "body": body, "prev_hash": prev, "hash": record_hash(prev, body)}


def flip(text: str) -> str:
    """Change one character of a hex string or JSON text."""
    return ("1" if text[0] == "0" else "0") + text[1:]


# -- canonical and record_hash ---------------------------------------------------------


def test_canonical_sorts_keys_and_drops_spaces():
    assert canonical({"b": 1, "a": [1, {"d": 2, "c": 3}]}) == '{"a":[1,{"c":3,"d":2}],"b":1}'


def test_canonical_keeps_utf8():
    assert canonical({"name": "Zoë"}) == '{"name":"Zoë"}'


@given(st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=6))
def test_canonical_is_independent_of_key_order(record):
    reversed_record = dict(reversed(list(record.items())))
    assert canonical(record) == canonical(reversed_record)
    assert json.loads(canonical(record)) == record


def test_record_hash_is_sha256_of_previous_hash_newline_body():
    body = canonical({"seq": 1})
    assert record_hash(GENESIS, body) == hashlib.sha256(
        (GENESIS + "\n" + body).encode()).hexdigest()


def test_record_hash_covers_the_previous_hash_and_the_body():
    body = canonical({"seq": 1})
    assert record_hash(GENESIS, body) != record_hash("1" * 64, body)
    assert record_hash(GENESIS, body) != record_hash(GENESIS, canonical({"seq": 2}))


def test_genesis_is_64_zeros():
    assert GENESIS == "0" * 64


# -- verify_chain: good chains ---------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 2, 10])
def test_an_intact_chain_verifies_with_its_count(n):
    verdict = verify_chain(build(n))
    assert verdict == Verdict(True, n)
    assert verdict.as_dict() == {"ok": True, "count": n}


def test_verification_can_start_part_way_along():
    rows = build(10)
    verdict = verify_chain(rows[4:], start_prev=rows[3]["hash"], start_seq=5)
    assert verdict == Verdict(True, 6)


def test_starting_part_way_with_the_wrong_previous_hash_fails_at_the_first_row():
    rows = build(10)
    verdict = verify_chain(rows[4:], start_prev=GENESIS, start_seq=5)
    assert not verdict.ok and verdict.first_bad_seq == 5


def test_verify_accepts_any_iterable_of_rows():
    assert verify_chain(iter(build(3))).ok


def test_broken_verdict_as_dict_names_seq_and_reason():
    rows = build(3)
    rows[1]["hash"] = flip(rows[1]["hash"])
    assert verify_chain(rows).as_dict() == {
        "ok": False, "count": 1, "seq": 2, "reason": "record content does not match its hash"}


# -- verify_chain: each kind of tampering ----------------------------------------------

N = 6
position = st.integers(0, N - 1)


@given(position, st.sampled_from(["body", "hash", "prev_hash"]))
def test_any_single_field_tamper_is_caught_at_its_seq(i, field):
    rows = build(N)
    rows[i][field] = flip(rows[i][field])
    verdict = verify_chain(rows)
    assert not verdict.ok
    assert verdict.first_bad_seq == i + 1
    assert verdict.count == i


@given(position, st.integers(-3, N + 3))
def test_a_changed_seq_is_caught_at_the_record_expected_there(i, new_seq):
    rows = build(N)
    if new_seq == rows[i]["seq"]:
        return
    rows[i]["seq"] = new_seq
    verdict = verify_chain(rows)
    assert not verdict.ok
    assert verdict.first_bad_seq == i + 1
    assert verdict.count == i


@given(position, st.sampled_from(["actor_id", "purpose", "event", "child_pseudonym", "at"]),
       st.text(min_size=1, max_size=10))
def test_an_edited_body_field_is_caught(i, key, value):
    rows = build(N)
    record = json.loads(rows[i]["body"])
    if record[key] == value:
        return
    record[key] = value
    rows[i]["body"] = canonical(record)
    verdict = verify_chain(rows)
    assert (verdict.ok, verdict.first_bad_seq) == (False, i + 1)
    assert verdict.reason == "record content does not match its hash"


@given(st.integers(0, N - 2))
def test_an_edit_with_its_own_hash_recomputed_is_caught_at_the_next_link(i):
    rows = build(N)
    record = json.loads(rows[i]["body"])
    record["purpose"] = "something else entirely"
    rows[i]["body"] = canonical(record)
    rows[i]["hash"] = record_hash(rows[i]["prev_hash"], rows[i]["body"])
    verdict = verify_chain(rows)
    assert (verdict.ok, verdict.first_bad_seq) == (False, i + 2)
    assert verdict.reason == "link to the previous record is broken"


@given(position)
def test_renumbering_inside_the_body_is_caught(i):
    rows = build(N)
    record = json.loads(rows[i]["body"])
    record["seq"] = record["seq"] + 100
    rows[i]["body"] = canonical(record)
    rows[i]["hash"] = record_hash(rows[i]["prev_hash"], rows[i]["body"])
    if i + 1 < N:
        rows[i + 1]["prev_hash"] = rows[i]["hash"]
        rows[i + 1]["hash"] = record_hash(rows[i + 1]["prev_hash"], rows[i + 1]["body"])
    verdict = verify_chain(rows[: i + 2])
    assert (verdict.ok, verdict.first_bad_seq) == (False, i + 1)
    assert verdict.reason == "sequence number altered"


@pytest.mark.parametrize("body", ["not json", "[1, 2]", "1", "null", '"text"'])
def test_a_body_that_is_not_a_json_record_is_reported_not_raised(body):
    rows = build(3)
    rows[1]["body"] = body
    rows[1]["hash"] = record_hash(rows[1]["prev_hash"], body)
    verdict = verify_chain(rows)
    assert (verdict.ok, verdict.first_bad_seq, verdict.count) == (False, 2, 1)


@given(st.integers(0, N - 2))
def test_a_deleted_record_is_reported_missing(i):
    rows = build(N)
    del rows[i]
    verdict = verify_chain(rows)
    assert (verdict.ok, verdict.first_bad_seq) == (False, i + 1)
    assert verdict.reason == f"record {i + 1} is missing"


def test_a_deleted_last_record_shows_only_in_the_count():
    # The chain alone cannot see a cut tail; signed checkpoints cover that.
    assert verify_chain(build(N)[:-1]) == Verdict(True, N - 1)


@given(st.data())
def test_reordered_records_are_caught_at_the_first_displaced_seq(data):
    rows = build(N)
    order = data.draw(st.permutations(range(N)))
    if list(order) == list(range(N)):
        return
    first_moved = next(k for k, j in enumerate(order) if k != j)
    verdict = verify_chain([rows[j] for j in order])
    assert (verdict.ok, verdict.first_bad_seq, verdict.count) == (False, first_moved + 1,
                                                                   first_moved)


@given(st.integers(0, N))
def test_an_inserted_record_that_is_not_properly_hashed_is_caught_at_its_seq(i):
    rows = build(N)
    prev = rows[i - 1]["hash"] if i else GENESIS
    forged = forge(i + 1, prev, actor_id="intruder")
    forged["hash"] = flip(forged["hash"])
    tampered = rows[:i] + [forged] + [{**r, "seq": r["seq"] + 1} for r in rows[i:]]
    verdict = verify_chain(tampered)
    assert (verdict.ok, verdict.first_bad_seq) == (False, i + 1)


@given(st.integers(0, N - 1))
def test_an_inserted_well_hashed_record_breaks_the_next_link(i):
    rows = build(N)
    prev = rows[i - 1]["hash"] if i else GENESIS
    forged = forge(i + 1, prev, actor_id="intruder")
    renumbered = [{**r, "seq": r["seq"] + 1} for r in rows[i:]]
    verdict = verify_chain([*rows[:i], forged, *renumbered])
    assert (verdict.ok, verdict.first_bad_seq) == (False, i + 2)
    assert verdict.reason == "link to the previous record is broken"


@given(st.integers(0, N - 1))
def test_an_inserted_record_repeating_a_seq_is_caught_where_the_repeat_appears(i):
    # The well-hashed forgery cannot be told from the real record i + 1 without a
    # checkpoint; the real one, arriving where record i + 2 belongs, breaks the chain.
    rows = build(N)
    prev = rows[i - 1]["hash"] if i else GENESIS
    forged = forge(i + 1, prev, actor_id="intruder")
    verdict = verify_chain([*rows[:i], forged, *rows[i:]])
    assert (verdict.ok, verdict.first_bad_seq, verdict.count) == (False, i + 2, i + 1)
    assert verdict.reason == f"record {i + 1} appears again where record {i + 2} belongs"


@given(position, st.integers(1, N))
def test_a_repeated_record_is_not_reported_as_missing(i, back):
    rows = build(N)
    if back > i + 1:
        return
    repeated = rows[i + 1 - back]
    verdict = verify_chain([*rows[: i + 1], repeated, *rows[i + 1:]])
    assert (verdict.ok, verdict.first_bad_seq) == (False, i + 2)
    assert "missing" not in verdict.reason


@settings(max_examples=50)
@given(st.integers(1, 20), st.data())
def test_only_the_untouched_chain_verifies(n, data):
    rows = build(n)
    assert verify_chain(rows) == Verdict(True, n)
    i = data.draw(st.integers(0, n - 1))
    field = data.draw(st.sampled_from(["body", "hash", "prev_hash"]))
    rows[i][field] = flip(rows[i][field])
    verdict = verify_chain(rows)
    assert (verdict.ok, verdict.first_bad_seq, verdict.count) == (False, i + 1, i)
