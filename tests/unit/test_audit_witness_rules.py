"""The witness and verification rules as plain functions: when a time-based
checkpoint is due, key windows, the published key history, reading a held
checkpoint, judging an offered checkpoint against the one held, and the trail
walk with checkpoints held outside the database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from adapters.checkpoints import (
    WINDOW_LEEWAY_S,
    BadCheckpoint,
    Checkpoint,
    open_checkpoint,
    read_checkpoint,
    sign_checkpoint,
)
from adapters.merkle import consistency_proof, frontier_extend, frontier_root, leaf_hash, root
from adapters.protocol import generate_signing_key
from adapters.witness import (
    EXTEND,
    FORK,
    HOLD,
    OLDER,
    SAME,
    checked_frontier,
    judge,
    proof_problem,
    proof_url_for,
    sizes_to_prove,
)
from federator.audit.cadence import due_in
from federator.audit.chain import GENESIS, canonical, record_hash
from federator.audit.verification import StoredCheckpoint, verify_trail
from federator.signing import history_document, rotated

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


# -- when a checkpoint is due -----------------------------------------------------------


def test_nothing_is_due_when_every_record_is_signed():
    assert due_in(10, 10, NOW.isoformat(), NOW, 60) is None
    assert due_in(0, 0, None, NOW, 60) is None


def test_a_first_checkpoint_is_due_at_once():
    assert due_in(3, 0, None, NOW, 60) == 0


def test_records_wait_for_the_interval_since_the_latest_checkpoint():
    at = (NOW - timedelta(seconds=20)).isoformat()
    assert due_in(11, 10, at, NOW, 60) == pytest.approx(40)
    old = (NOW - timedelta(seconds=60)).isoformat()
    assert due_in(11, 10, old, NOW, 60) == 0


# -- keys and their windows -------------------------------------------------------------


def ring_after_rotation(overlap_s: float):
    old = generate_signing_key("old")
    from federator.signing import RingKey

    ring = [RingKey(old, 1000.0, None, True)]
    return rotated(ring, now=2000.0, overlap_s=overlap_s, new_key=generate_signing_key("new"))


def test_the_history_publishes_every_key_with_its_window_and_status():
    ring = ring_after_rotation(0)
    doc = history_document(ring, now=2000.5)
    by_kid = {k["kid"]: k for k in doc["keys"]}
    assert by_kid["old"]["status"] == "retired" and by_kid["old"]["retires_at"] == 2000.0
    assert by_kid["new"]["status"] == "current" and by_kid["new"]["retires_at"] is None
    assert all("d" not in k for k in doc["keys"])  # public halves only
    overlapping = {k["kid"]: k["status"] for k in history_document(
        ring_after_rotation(600), now=2001)["keys"]}
    assert overlapping == {"old": "retiring", "new": "current"}


def signed_at(key, at: datetime, size: int = 3) -> Checkpoint:
    return sign_checkpoint(Checkpoint(log="federator", tree_size=size, root_hash="ab" * 32,
                                      head_hash="cd" * 32,
                                      at=at.isoformat(timespec="milliseconds")), key)


def test_a_retired_key_verifies_what_it_signed_within_its_window():
    ring = ring_after_rotation(0)
    doc = history_document(ring, now=3000)
    old = ring[0].key
    inside = signed_at(old, datetime.fromtimestamp(1500, UTC))
    assert open_checkpoint(inside.signed, doc).kid == "old"


def test_a_key_used_outside_its_window_is_named():
    ring = ring_after_rotation(0)
    doc = history_document(ring, now=3000)
    late = signed_at(ring[0].key, datetime.fromtimestamp(2000 + WINDOW_LEEWAY_S + 5, UTC))
    with pytest.raises(BadCheckpoint, match="with key old, outside its validity window"):
        open_checkpoint(late.signed, doc)
    early = signed_at(ring[1].key, datetime.fromtimestamp(1000, UTC))
    with pytest.raises(BadCheckpoint, match="key new, outside its validity window"):
        open_checkpoint(early.signed, doc)


def test_a_plain_jwks_checks_the_signature_alone():
    key = generate_signing_key("k")
    cp = signed_at(key, NOW)
    assert open_checkpoint(cp.signed, {"keys": [key.as_dict(private=False)]}).tree_size == 3
    with pytest.raises(BadCheckpoint, match="unknown key"):
        open_checkpoint(cp.signed, {"keys": []})


# -- a checkpoint as people keep one ------------------------------------------------------


def test_a_held_checkpoint_is_read_from_json_a_string_or_the_bare_token():
    token = signed_at(generate_signing_key("k"), NOW).signed
    assert read_checkpoint(json.dumps({"tree_size": 3, "signed": token})) == token
    assert read_checkpoint(json.dumps({"checkpoint": {"signed": token}})) == token
    assert read_checkpoint(json.dumps(token)) == token
    assert read_checkpoint(f"\n{token}\n") == token
    with pytest.raises(ValueError, match="no signed checkpoint"):
        read_checkpoint('{"tree_size": 3}')
    with pytest.raises(ValueError, match="no signed checkpoint"):
        read_checkpoint("hello")


# -- judging an offered checkpoint -----------------------------------------------------------


def tree(n: int) -> list[bytes]:
    return [leaf_hash(f"record {i}".encode()) for i in range(1, n + 1)]


def checkpoint_of(leaves: list[bytes], head: str = "h") -> Checkpoint:
    return Checkpoint(log="federator", tree_size=len(leaves), root_hash=root(leaves).hex(),
                      head_hash=head * 64, at=NOW.isoformat())


def test_judge_names_each_case():
    held = checkpoint_of(tree(5))
    assert judge(None, held) == HOLD
    assert judge(held, checkpoint_of(tree(5))) == SAME
    assert judge(held, checkpoint_of(tree(5), head="e")) == FORK
    assert judge(held, checkpoint_of(tree(8))) == EXTEND
    assert judge(held, checkpoint_of(tree(3))) == OLDER
    assert sizes_to_prove(None, held) == (5, 5)
    assert sizes_to_prove(held, checkpoint_of(tree(3))) == (3, 5)


def answer(first: int, leaves: list[bytes]) -> dict:
    return {"first": first, "second": len(leaves),
            "proof": [p.hex() for p in consistency_proof(first, leaves)]}


def test_a_proof_that_the_held_tree_is_a_prefix_passes():
    held, grown = checkpoint_of(tree(5)), checkpoint_of(tree(13))
    assert proof_problem(held, grown, answer(5, tree(13))) is None
    assert proof_problem(grown, held, answer(5, tree(13))) is None  # older offered


def test_a_rewritten_or_cut_trail_cannot_prove_the_held_tree():
    held = checkpoint_of(tree(5))
    rewritten = [*tree(2), leaf_hash(b"changed"), *tree(13)[3:]]
    grown = checkpoint_of(rewritten)
    problem = proof_problem(held, grown, answer(5, rewritten))
    assert problem is not None and "does not extend the tree of 5 records" in problem
    assert proof_problem(held, grown, {**answer(5, rewritten), "first": 4}) is not None
    assert proof_problem(held, grown, {"first": 5, "second": 13, "proof": ["zz"]}) is not None


def test_a_frontier_is_kept_only_when_it_folds_to_the_signed_root():
    leaves = tree(11)
    frontier, _ = frontier_extend([], 0, leaves)
    cp = checkpoint_of(leaves)
    assert checked_frontier(cp, [h.hex() for h in frontier]) == tuple(h.hex() for h in frontier)
    assert frontier_root(frontier).hex() == cp.root_hash
    assert checked_frontier(cp, [h.hex() for h in frontier[1:]]) == ()
    assert checked_frontier(cp, ["not hex"]) == ()


def test_the_proof_url_sits_next_to_the_jwks():
    assert proof_url_for("https://b.example/.well-known/jwks.json") == \
        "https://b.example/api/v1/transparency/consistency"
    assert proof_url_for("https://b.example/keys") is None


# -- the walk with checkpoints held elsewhere ----------------------------------------------


def chain(n: int, change: int | None = None) -> list[dict]:
    rows, prev = [], GENESIS
    for seq in range(1, n + 1):
        body = canonical({"seq": seq, "event": "x", "note": "changed" if seq == change else ""})
        digest = record_hash(prev, body)
        rows.append({"seq": seq, "body": body, "prev_hash": prev, "hash": digest})
        prev = digest
    return rows


def held_of(rows: list[dict], key, source: str = "kit.json") -> StoredCheckpoint:
    frontier, _ = frontier_extend([], 0, (leaf_hash(r["body"].encode()) for r in rows))
    cp = sign_checkpoint(Checkpoint(log="federator", tree_size=len(rows),
                                    root_hash=frontier_root(frontier).hex(),
                                    head_hash=rows[-1]["hash"], at=NOW.isoformat()), key)
    return StoredCheckpoint(cp.tree_size, cp.signed, source=source)


def test_a_trail_shorter_than_a_held_checkpoint_never_passes():
    key = generate_signing_key("k")
    jwks = {"keys": [key.as_dict(private=False)]}
    held = held_of(chain(9), key)
    verdict = verify_trail(iter(chain(6)), [held], jwks=jwks)
    assert not verdict.ok and verdict.first_bad_seq == 7
    assert verdict.reason == ("record 7 is missing: the checkpoint in kit.json (signed at "
                              "record 9) covers it")
    assert verify_trail(iter(chain(12)), [held], jwks=jwks).ok


def test_a_rechained_trail_differs_from_the_held_checkpoint():
    key = generate_signing_key("k")
    jwks = {"keys": [key.as_dict(private=False)]}
    held = held_of(chain(9), key)
    verdict = verify_trail(iter(chain(12, change=4)), [held], jwks=jwks)
    assert not verdict.ok
    assert "differ from the checkpoint in kit.json (signed at record 9)" in verdict.reason
    # a held checkpoint of the good prefix narrows where the change can be
    narrowed = verify_trail(iter(chain(12, change=4)), [held_of(chain(2), key, "a.json"),
                                                         held], jwks=jwks)
    assert narrowed.first_bad_seq == 3 and narrowed.count == 2
