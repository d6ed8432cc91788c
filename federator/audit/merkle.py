"""RFC 9162 Merkle hashing: defined in :mod:`adapters.merkle` (the adapter kit
checks consistency proofs with it, and ``adapters`` never imports ``federator``)."""

from adapters.merkle import (
    EMPTY_ROOT,
    ProofError,
    consistency_proof,
    frontier_extend,
    frontier_push,
    frontier_root,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    root_from_inclusion,
    verify_consistency,
    verify_inclusion,
)

__all__ = ["EMPTY_ROOT", "ProofError", "consistency_proof", "frontier_extend",
           "frontier_push", "frontier_root", "inclusion_proof", "leaf_hash", "node_hash",
           "root", "root_from_inclusion", "verify_consistency", "verify_inclusion"]
