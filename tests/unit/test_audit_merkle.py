"""RFC 9162 Merkle hashing against the transparency-dev ``merkle`` project's vectors
(``testonly/constants.go`` and ``proof/verify_test.go``: the numbers, copied)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.merkle_vectors import CONSISTENCY, HASHES, INCLUSION, LEVEL0, ROOTS, h

from federator.audit.merkle import (
    EMPTY_ROOT,
    ProofError,
    consistency_proof,
    frontier_extend,
    frontier_root,
    inclusion_proof,
    leaf_hash,
    root,
    root_from_inclusion,
    verify_consistency,
    verify_inclusion,
)

SOME_HASH = h("abacaba000000000000000000000000000000000000000000060061e00123456")


def test_leaf_hashes_match_the_vectors():
    assert HASHES == LEVEL0


@pytest.mark.parametrize("size", range(9))
def test_roots_match_the_vectors(size):
    assert root(HASHES[:size]) == ROOTS[size]


def test_empty_root_is_sha256_of_nothing():
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT == ROOTS[0]


@pytest.mark.parametrize("size", range(9))
def test_frontier_gives_the_same_roots(size):
    frontier, n = frontier_extend([], 0, HASHES[:size])
    assert (n, frontier_root(frontier)) == (size, ROOTS[size])


@pytest.mark.parametrize(("leaf", "size", "proof"), INCLUSION)
def test_inclusion_proofs_match_and_verify(leaf, size, proof):
    expected = [h(p) for p in proof]
    assert inclusion_proof(leaf - 1, HASHES[:size]) == expected
    verify_inclusion(leaf - 1, size, HASHES[leaf - 1], expected, ROOTS[size])


@pytest.mark.parametrize(("leaf", "size", "proof"), INCLUSION[1:])
def test_corrupted_inclusion_proofs_are_refused(leaf, size, proof):
    proof = [h(p) for p in proof]
    index, leaf_h, good = leaf - 1, HASHES[leaf - 1], ROOTS[size]
    probes = [
        (index - 1, size, leaf_h, proof, good), (index + 1, size, leaf_h, proof, good),
        (index ^ 2, size, leaf_h, proof, good), (index, size * 2, leaf_h, proof, good),
        (index, size // 2, leaf_h, proof, good), (index, size, b"WrongLeaf", proof, good),
        (index, size, leaf_h, proof, EMPTY_ROOT), (index, size, leaf_h, proof, SOME_HASH),
        (index, size, leaf_h, [*proof, b""], good), (index, size, leaf_h, [*proof, good], good),
        (index, size, leaf_h, [b"", *proof], good), (index, size, leaf_h, [good, *proof], good),
        (index, size, leaf_h, proof[:-1], good),
    ]
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 8]) + bad[i][1:]
        probes.append((index, size, leaf_h, bad, good))
    if len(proof) > 1:
        probes.append((index, size, leaf_h, [proof[0], SOME_HASH, *proof[1:]], good))
    for probe in probes:
        with pytest.raises(ProofError):
            verify_inclusion(*probe)


@pytest.mark.parametrize(("first", "second", "proof"), CONSISTENCY)
def test_consistency_proofs_match_and_verify(first, second, proof):
    expected = [h(p) for p in proof]
    assert consistency_proof(first, HASHES[:second]) == expected
    verify_consistency(first, second, expected, ROOTS[first], ROOTS[second])


@pytest.mark.parametrize(("first", "second", "proof"), CONSISTENCY[1:])
def test_corrupted_consistency_proofs_are_refused(first, second, proof):
    proof = [h(p) for p in proof]
    r1, r2 = ROOTS[first], ROOTS[second]
    probes = [
        (first - 1, second, proof, r1, r2), (first + 1, second, proof, r1, r2),
        (first ^ 2, second, proof, r1, r2), (first, second * 2, proof, r1, r2),
        (first, second // 2, proof, r1, r2), (first, second, proof, b"WrongRoot", r2),
        (first, second, proof, r1, b"WrongRoot"), (first, second, proof, r2, r1),
        (first, second, [], r1, r2), (first, second, [*proof, b""], r1, r2),
        (first, second, [*proof, r1], r1, r2), (first, second, [*proof, r2], r1, r2),
        (first, second, [b"", *proof], r1, r2), (first, second, [r1, *proof], r1, r2),
        (first, second, [r2, *proof], r1, r2), (first, second, [proof[0], *proof], r1, r2),
        (first, second, proof[:-1], r1, r2),
    ]
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 16]) + bad[i][1:]
        probes.append((first, second, bad, r1, r2))
    for probe in probes:
        with pytest.raises(ProofError):
            verify_consistency(*probe)


@pytest.mark.parametrize(("first", "second", "r1", "r2", "proof", "ok"), [
    (0, 0, b"1", b"2", [], False), (1, 1, b"1", b"2", [], False),
    (0, 0, b"1", b"1", [], True), (0, 1, b"1", b"2", [], True), (1, 1, b"2", b"2", [], True),
    (1, 0, b"1", b"2", [], False), (2, 1, b"1", b"2", [], False), (1, 2, b"1", b"2", [], False),
    (0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
    (0, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
    (1, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
])
def test_consistency_edge_cases(first, second, r1, r2, proof, ok):
    if ok:
        verify_consistency(first, second, proof, r1, r2)
    else:
        with pytest.raises(ProofError):
            verify_consistency(first, second, proof, r1, r2)


@pytest.mark.parametrize(("index", "size"), [(0, 0), (0, 1), (1, 0), (2, 1)])
def test_inclusion_with_an_empty_proof_is_refused_for_bad_sizes_or_roots(index, size):
    for leaf, want in ((SOME_HASH, b""), (b"", EMPTY_ROOT), (SOME_HASH, EMPTY_ROOT)):
        with pytest.raises(ProofError):
            verify_inclusion(index, size, leaf, [], want)


@given(st.integers(1, 70), st.data())
def test_every_generated_proof_verifies(n, data):
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    tree_root = root(leaves)
    i = data.draw(st.integers(0, n - 1))
    verify_inclusion(i, n, leaves[i], inclusion_proof(i, leaves), tree_root)
    m = data.draw(st.integers(0, n))
    verify_consistency(m, n, consistency_proof(m, leaves), root(leaves[:m]), tree_root)
    frontier, _ = frontier_extend([], 0, leaves)
    assert frontier_root(frontier) == tree_root


def test_root_from_inclusion_names_a_short_proof():
    with pytest.raises(ProofError, match="too short"):
        root_from_inclusion(0, 8, HASHES[0], [])
