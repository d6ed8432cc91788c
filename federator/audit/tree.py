"""RFC 9162 proofs from a tree's stored nodes: which nodes a proof needs, and how
they fold into it. Pure; ``federator.audit.tree_store`` reads and writes them.

A *node* ``(level, index)`` is the root of the perfect subtree over leaves
``index * 2**level`` to ``(index + 1) * 2**level - 1`` (level 0: a leaf).
Every element of an inclusion or consistency proof (RFC 9162 2.1.3.1 and
2.1.4.1) is the hash of a range of leaves ``[a, b)`` that the tree's
recursive split produces; such a range is one node when it is perfect, else
(the ragged right edge of a tree whose size is not a power of two) the fold of
the few nodes it splits into. A proof for a tree of ``n`` leaves needs
O(log n) nodes, whatever ``n``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from federator.audit.merkle import EMPTY_ROOT, ProofError, node_hash

Node = tuple[int, int]
Range = tuple[int, int]


def _split(n: int) -> int:
    """The largest power of two strictly below ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """PATH(index, D[0:size]) as leaf ranges, the leaf's sibling first."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size}")
    out: list[Range] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo += k
    out.reverse()
    return out


def consistency_ranges(first: int, second: int) -> list[Range]:
    """PROOF(first, D[0:second]) as leaf ranges, in the proof's order."""
    if not 0 <= first <= second:
        raise ProofError(f"a tree of {first} cannot precede a tree of {second}")
    if first in (0, second):
        return []
    out: list[Range] = []
    m, lo, hi, whole = first, 0, second, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            m, lo, whole = m - k, lo + k, False
    if not whole:
        out.append((lo, hi))
    out.reverse()
    return out


def frontier_ranges(size: int) -> list[Range]:
    """The perfect subtrees a tree of ``size`` leaves splits into, largest first."""
    out, lo = [], 0
    for bit in range(size.bit_length() - 1, -1, -1):
        if size >> bit & 1:
            out.append((lo, lo + (1 << bit)))
            lo += 1 << bit
    return out


def nodes_of(lo: int, hi: int) -> list[Node]:
    """The nodes whose fold (:func:`fold`) is MTH(D[lo:hi]), as the tree splits it."""
    n = hi - lo
    if n <= 0:
        raise ProofError(f"no leaves between {lo} and {hi}")
    if n & (n - 1) == 0 and lo % n == 0:
        return [(n.bit_length() - 1, lo // n)]
    k = _split(n)
    return [*nodes_of(lo, lo + k), *nodes_of(lo + k, hi)]


def fold(lo: int, hi: int, node: Callable[[Node], bytes]) -> bytes:
    """MTH(D[lo:hi]) (RFC 9162 2.1.1) from the nodes ``node`` gives."""
    n = hi - lo
    if n == 0:
        return EMPTY_ROOT
    if n & (n - 1) == 0 and lo % n == 0:
        return node((n.bit_length() - 1, lo // n))
    k = _split(n)
    return node_hash(fold(lo, lo + k, node), fold(lo + k, hi, node))


def needed(ranges: Iterable[Range]) -> set[Node]:
    return {n for lo, hi in ranges for n in nodes_of(lo, hi)}


def hashes(ranges: Iterable[Range], nodes: Mapping[Node, bytes]) -> list[bytes]:
    """Each range's hash, from ``nodes`` (holding every node :func:`needed` names)."""
    return [fold(lo, hi, nodes.__getitem__) for lo, hi in ranges]


def completed(start: int, leaves: Iterable[bytes], frontier: list[bytes]
              ) -> Iterable[tuple[Node, bytes]]:
    """Every node of level 1 and up that leaves ``start``, ``start + 1``, ...
    complete, in order, as each leaf is pushed onto ``frontier`` (the roots of
    the perfect subtrees of the first ``start`` leaves, largest first, updated in
    place: ``adapters.merkle.frontier_push``)."""
    size = start
    for leaf in leaves:
        node, level, s = leaf, 0, size
        while s & 1:
            node = node_hash(frontier.pop(), node)
            level += 1
            s >>= 1
            yield (level, size >> level), node
        frontier.append(node)
        size += 1
