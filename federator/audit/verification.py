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
from federator.audit.merkle import frontier_push, frontier_root, leaf_hash


@dataclass(frozen=True)
class StoredCheckpoint:
    tree_size: int
    signed: str
    frontier: tuple[str, ...] = ()


def verify_trail(rows: Iterable[Mapping[str, Any]], checkpoints: Sequence[StoredCheckpoint],
                 *, jwks: Mapping[str, Any] | None, start_seq: int = 1,
                 start_prev: str = GENESIS, end: int | None = None) -> Verdict:
    """``rows`` in seq order from ``start_seq``. The Merkle root is checked only
    when the walk starts at record 1; signatures and chain heads always."""
    wanted = sorted((c for c in checkpoints if c.tree_size >= start_seq
                     and (end is None or c.tree_size <= end)), key=lambda c: c.tree_size)
    by_size = {c.tree_size: c for c in wanted}
    state: dict[str, Any] = {"failure": None, "last": start_seq - 1, "good": start_seq - 1}
    frontier: list[bytes] = []
    with_root = start_seq == 1

    def check(row: Mapping[str, Any]) -> Verdict | None:
        stored = by_size.get(int(row["seq"]))
        if stored is None:
            return None
        try:
            cp = _open(stored.signed, jwks)
        except BadCheckpoint as e:
            return Verdict(False, stored.tree_size, stored.tree_size,
                           f"the checkpoint at record {stored.tree_size}: {e}")
        if cp.tree_size != stored.tree_size:
            return Verdict(False, stored.tree_size, stored.tree_size,
                           f"the checkpoint at record {stored.tree_size} was moved")
        rewritten = cp.head_hash != row["hash"] or (
            with_root and frontier_root(frontier).hex() != cp.root_hash)
        if rewritten:
            lo, hi = _narrow(state["good"] + 1, cp.tree_size, frontier, stored.frontier)
            return Verdict(False, state["good"], lo,
                           f"records {lo} to {hi} differ from the checkpoint signed at "
                           f"record {cp.tree_size}: rewritten after it was signed")
        state["good"] = cp.tree_size
        return None

    def feed() -> Iterator[Mapping[str, Any]]:
        for row in rows:
            yield row  # verify_chain checks it before asking for the next one
            state["last"] = int(row["seq"])
            if with_root:
                frontier_push(frontier, state["last"] - 1, leaf_hash(row["body"].encode()))
            failure = check(row)
            if failure is not None:
                state["failure"] = failure
                return

    verdict = verify_chain(feed(), start_prev=start_prev, start_seq=start_seq)
    if not verdict.ok:
        return verdict
    if state["failure"] is not None:
        return state["failure"]
    beyond = [c for c in wanted if c.tree_size > state["last"]]
    if beyond:
        missing = state["last"] + 1
        return Verdict(False, verdict.count, missing,
                       f"record {missing} is missing: the checkpoint signed at record "
                       f"{beyond[-1].tree_size} covers it")
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
