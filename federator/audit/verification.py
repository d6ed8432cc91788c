"""Verify the trail: the hash chain, and every signed checkpoint it reaches.

Pure: rows and checkpoints in, a ``Verdict`` out. The chain (``chain.py``)
names the first record whose hash, link or number is wrong. Checkpoints catch
what a chain alone cannot: a cut tail, and a record rewritten with every later
hash recomputed (the signed root and head no longer match; the checkpoint's
frontier narrows which records changed).
"""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from federator.audit.chain import GENESIS, Verdict
from federator.audit.checkpoints import BadCheckpoint, Checkpoint, open_checkpoint
from federator.audit.marks import Marks
from federator.audit.merkle import frontier_root
from federator.audit.walk import as_row, walk


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


def verify_trail(rows: Iterable[Sequence[Any]], checkpoints: Sequence[StoredCheckpoint],
                 *, jwks: Mapping[str, Any] | None, start_seq: int = 1,
                 start_prev: str = GENESIS, end: int | None = None,
                 complete: bool | None = None) -> Verdict:
    """``rows`` in seq order from ``start_seq``: tuples in ``walk.ROW`` order, or
    mappings (``walk.as_row``). The Merkle root is checked only
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
    good = [start_seq - 1]  # the last size whose checkpoints held
    with_root = start_seq == 1

    def on_stop(seq: int, head: str, frontier: Sequence[bytes]) -> Verdict | None:
        for stored in by_size[seq]:
            try:
                cp = _open(stored.signed, jwks)
            except BadCheckpoint as e:
                return Verdict(False, good[0], stored.tree_size, f"{stored.named()}: {e}")
            if cp.tree_size != stored.tree_size:
                return Verdict(False, good[0], stored.tree_size,
                               f"{stored.named()} was moved")
            if cp.head_hash != head or (
                    with_root and frontier_root(frontier).hex() != cp.root_hash):
                lo, hi = _narrow(good[0] + 1, cp.tree_size, frontier if with_root else (),
                                 stored.frontier)
                return Verdict(False, good[0], lo,
                               f"records {lo} to {hi} differ from {stored.named()}: changed, "
                               "removed or inserted after it was signed")
        good[0] = seq
        return None

    verdict, last = walk(_tuples(rows), start_prev=start_prev, start_seq=start_seq, marks=Marks(),
                         complete=end is None if complete is None else complete,
                         stops=sorted(by_size), on_stop=on_stop, merkle=with_root)
    if not verdict.ok:
        return verdict
    beyond = [c for c in wanted if c.tree_size > last]
    if beyond:
        missing = last + 1
        held = [c for c in beyond if c.source] or beyond
        return Verdict(False, verdict.count, missing,
                       f"record {missing} is missing: {held[-1].named()} covers it")
    return verdict


def _tuples(rows: Iterable[Any]) -> Iterator[Sequence[Any]]:
    """Rows as ``walk.ROW`` tuples, whether they come as tuples or as mappings."""
    it = iter(rows)
    first = next(it, None)
    if first is None:
        return iter(())
    rest = itertools.chain((first,), it)
    return map(as_row, rest) if isinstance(first, Mapping) else rest


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
