"""Verify the trail: the hash chain, and every signed checkpoint it reaches.

Pure: rows and checkpoints in, a ``Verdict`` out. The chain (``chain.py``)
names the first record whose hash, link or number is wrong. Checkpoints catch
what a chain alone cannot: a cut tail, and a record rewritten with every later
hash recomputed (the signed root and head no longer match; the checkpoint's
frontier narrows which records changed).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from federator.audit.chain import GENESIS, Verdict, verify_chain
from federator.audit.checkpoints import BadCheckpoint, Checkpoint, open_checkpoint
from federator.audit.marks import Marks
from federator.audit.merkle import frontier_push, frontier_root, leaf_hash


@dataclass(frozen=True)
class StoredCheckpoint:
    tree_size: int
    signed: str
    frontier: tuple[str, ...] = ()
    #: where a checkpoint held outside the database came from (a file, a kit);
    #: empty for the trail's own
    source: str = ""

    def named(self) -> str:
        if self.source:
            return f"the checkpoint in {self.source} (signed at record {self.tree_size})"
        return f"the checkpoint signed at record {self.tree_size}"


def verify_trail(rows: Iterable[Mapping[str, Any]], checkpoints: Sequence[StoredCheckpoint],
                 *, jwks: Mapping[str, Any] | None, start_seq: int = 1,
                 start_prev: str = GENESIS, end: int | None = None,
                 complete: bool | None = None) -> Verdict:
    """``rows`` in seq order from ``start_seq``. The Merkle root is checked only
    when the walk starts at record 1; signatures and chain heads always.
    ``checkpoints`` are the trail's own and any held elsewhere (``source`` set):
    a trail shorter than any of them, or holding another tree at its size, fails.
    ``complete`` (default: no ``end``): the rows reach the trail's head, so every
    pruned body and redacted text must be accounted for by a record among them."""
    wanted = sorted((c for c in checkpoints if c.tree_size >= start_seq
                     and (end is None or c.tree_size <= end)), key=lambda c: c.tree_size)
    by_size: dict[int, list[StoredCheckpoint]] = {}
    for c in wanted:
        by_size.setdefault(c.tree_size, []).append(c)
    state: dict[str, Any] = {"failure": None, "last": start_seq - 1, "good": start_seq - 1}
    frontier: list[bytes] = []
    with_root = start_seq == 1

    def check_one(row: Mapping[str, Any], stored: StoredCheckpoint) -> Verdict | None:
        try:
            cp = _open(stored.signed, jwks)
        except BadCheckpoint as e:
            return Verdict(False, state["good"], stored.tree_size, f"{stored.named()}: {e}")
        if cp.tree_size != stored.tree_size:
            return Verdict(False, state["good"], stored.tree_size,
                           f"{stored.named()} was moved")
        rewritten = cp.head_hash != row["hash"] or (
            with_root and frontier_root(frontier).hex() != cp.root_hash)
        if rewritten:
            lo, hi = _narrow(state["good"] + 1, cp.tree_size, frontier, stored.frontier)
            return Verdict(False, state["good"], lo,
                           f"records {lo} to {hi} differ from {stored.named()}: changed, "
                           "removed or inserted after it was signed")
        return None

    def check(row: Mapping[str, Any]) -> Verdict | None:
        for stored in by_size.get(int(row["seq"]), ()):
            failure = check_one(row, stored)
            if failure is not None:
                return failure
        if int(row["seq"]) in by_size:
            state["good"] = int(row["seq"])
        return None

    def feed() -> Iterator[Mapping[str, Any]]:
        for row in rows:
            yield row  # verify_chain checks it before asking for the next one
            state["last"] = int(row["seq"])
            if with_root:
                frontier_push(frontier, state["last"] - 1, bytes.fromhex(row["leaf"])
                              if row["body"] == "" else leaf_hash(row["body"].encode()))
            failure = check(row)
            if failure is not None:
                state["failure"] = failure
                return

    verdict = verify_chain(feed(), start_prev=start_prev, start_seq=start_seq,
                           marks=Marks(), complete=end is None if complete is None
                           else complete)
    if state["failure"] is not None:  # a checkpoint failed: the walk stopped there
        return state["failure"]
    if not verdict.ok:
        return verdict
    beyond = [c for c in wanted if c.tree_size > state["last"]]
    if beyond:
        missing = state["last"] + 1
        held = [c for c in beyond if c.source] or beyond
        return Verdict(False, verdict.count, missing,
                       f"record {missing} is missing: {held[-1].named()} covers it")
    return verdict


def _open(token: str, jwks: Mapping[str, Any] | None) -> Checkpoint:
    if jwks is not None:
        return open_checkpoint(token, jwks)
    try:  # no keys at hand: the claims alone (the signature is checked where keys are)
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return Checkpoint(**{k: claims[k] for k in
                             ("log", "tree_size", "root_hash", "head_hash", "at")})
    except (IndexError, ValueError, KeyError, TypeError) as e:
        raise BadCheckpoint("checkpoint is not readable") from e


def _narrow(lo: int, size: int, ours: Sequence[bytes], theirs: Sequence[str]
            ) -> tuple[int, int]:
    """The first perfect subtree whose root differs: the records it spans."""
    if len(ours) != len(theirs):
        return lo, size
    start = 0
    for bit, mine, signed in zip(_bits(size), ours, theirs, strict=True):
        if mine.hex() != signed:
            return max(lo, start + 1), start + bit
        start += bit
    return lo, size


def _bits(size: int) -> list[int]:
    return [1 << b for b in range(size.bit_length() - 1, -1, -1) if size >> b & 1]
