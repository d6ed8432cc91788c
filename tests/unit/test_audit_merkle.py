"""RFC 9162 Merkle hashing against the transparency-dev ``merkle`` project's vectors
(``testonly/constants.go`` and ``proof/verify_test.go``: the numbers, copied)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

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

h = bytes.fromhex
LEAVES = [h(x) for x in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                         "606162636465666768696a6b6c6d6e6f")]
HASHES = [leaf_hash(x) for x in LEAVES]
ROOTS = [h(x) for x in (
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
)]
LEVEL0 = [h(x) for x in (
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
    "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
    "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
)]
# (leaf number from 1, tree size, proof) from verify_test.go inclusionProofs
INCLUSION = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (3, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (2, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]
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
