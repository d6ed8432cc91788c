"""Proofs from stored nodes (federator.audit.tree) against the transparency-dev
``merkle`` project's vectors (the numbers, as in test_audit_merkle.py) and against
the proofs computed from every leaf (federator.audit.merkle), for every size and
index up to a few hundred and random large trees; each verified with the kit's
RFC 9162 verifier (adapters.merkle)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.merkle_vectors import CONSISTENCY, HASHES, INCLUSION, ROOTS, h

from adapters.merkle import (
    ProofError,
    consistency_proof,
    frontier_extend,
    inclusion_proof,
    leaf_hash,
    root,
    verify_consistency,
    verify_inclusion,
)
from federator.audit import tree

N = 140  # every size and index up to this: about 10,000 proofs of each kind


def leaves(n: int) -> list[bytes]:
    return [leaf_hash(str(i).encode()) for i in range(n)]


def stored(leaf_hashes: list[bytes]) -> dict[tree.Node, bytes]:
    """The nodes as tree_store writes them (``tree.completed``), and the leaves."""
    nodes = {(0, i): leaf for i, leaf in enumerate(leaf_hashes)}
    nodes.update(tree.completed(0, leaf_hashes, []))
    return nodes


ALL = leaves(N)
NODES = stored(ALL)


def test_completed_nodes_are_the_roots_of_their_subtrees():
    for (level, index), digest in NODES.items():
        width = 1 << level
        assert digest == root(ALL[index * width:(index + 1) * width])
    # every complete perfect subtree is there, and nothing else
    expected = {(level, i) for level in range(8) for i in range(N >> level)}
    assert set(NODES) == expected


def test_completed_goes_on_from_a_frontier():
    first, _ = frontier_extend([], 0, ALL[:50])  # as fill resumes after 50 leaves
    later = dict(tree.completed(50, ALL[50:], list(first)))
    assert later == {k: v for k, v in NODES.items() if k[0] > 0 and (k[1] + 1) << k[0] > 50}


def test_the_vectors():
    nodes = stored(HASHES)
    for number, size, proof in INCLUSION:
        spans = tree.inclusion_ranges(number - 1, size)
        assert [p.hex() for p in tree.hashes(spans, nodes)] == proof
    for first, second, proof in CONSISTENCY:
        spans = tree.consistency_ranges(first, second)
        assert [p.hex() for p in tree.hashes(spans, nodes)] == proof
    for size in range(1, 9):
        assert tree.hashes([(0, size)], nodes) == [ROOTS[size]]


def test_every_inclusion_proof_up_to_n():
    for size in range(1, N + 1):
        top = root(ALL[:size])
        for index in range(size):
            spans = tree.inclusion_ranges(index, size)
            proof = tree.hashes(spans, NODES)
            assert proof == inclusion_proof(index, ALL[:size]), (index, size)
            verify_inclusion(index, size, ALL[index], proof, top)


def test_every_consistency_proof_up_to_n():
    for second in range(1, N + 1):
        top = root(ALL[:second])
        frontier = tree.hashes(tree.frontier_ranges(second), NODES)
        assert frontier == frontier_extend([], 0, ALL[:second])[0]
        for first in range(0, second + 1):
            proof = tree.hashes(tree.consistency_ranges(first, second), NODES)
            assert proof == consistency_proof(first, ALL[:second]), (first, second)
            if first:
                verify_consistency(first, second, proof, root(ALL[:first]), top)


def test_a_proof_reads_o_log_n_nodes():
    for size in (2**20 - 1, 2**20, 10**6, 2**40 + 12345):
        for index in (0, size // 3, size - 1):
            assert len(tree.needed(tree.inclusion_ranges(index, size))) <= 2 * size.bit_length()
            assert len(tree.needed([*tree.consistency_ranges(index + 1, size),
                                    *tree.frontier_ranges(size)])) <= 3 * size.bit_length()


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=N, max_value=5000), st.data())
def test_random_bigger_trees_against_the_leaves(size, data):
    every = leaves(size)
    nodes = stored(every)
    top = root(every)
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    first = data.draw(st.integers(min_value=1, max_value=size))
    proof = tree.hashes(tree.inclusion_ranges(index, size), nodes)
    assert proof == inclusion_proof(index, every)
    verify_inclusion(index, size, every[index], proof, top)
    with pytest.raises(ProofError):  # a wrong leaf does not verify
        verify_inclusion(index, size, h("00" * 32), proof, top)
    proof = tree.hashes(tree.consistency_ranges(first, size), nodes)
    assert proof == consistency_proof(first, every)
    verify_consistency(first, size, proof, root(every[:first]), top)


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=1, max_value=N), st.data())
def test_random_sizes_against_the_leaves(size, data):
    every = leaves(size)
    nodes = stored(every)
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    first = data.draw(st.integers(min_value=0, max_value=size))
    assert tree.hashes(tree.inclusion_ranges(index, size), nodes) == inclusion_proof(
        index, every)
    assert tree.hashes(tree.consistency_ranges(first, size), nodes) == consistency_proof(
        first, every)


def test_out_of_range_is_refused():
    with pytest.raises(ProofError):
        tree.inclusion_ranges(5, 5)
    with pytest.raises(ProofError):
        tree.consistency_ranges(6, 5)
