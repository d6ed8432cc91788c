"""Witnessing the broker's audit trail: the rules, as pure functions.

A witness holds the newest signed checkpoint it has seen of the broker's trail
(``adapters.checkpoints``). Offered another (the ``Federator-Checkpoint``
header of every ``federator-lookup/1`` request, or the broker's public
``GET /api/v1/transparency/checkpoint``), it decides with :func:`judge`:

- ``hold``: none held yet; hold this one (after fetching its frontier);
- ``same``: the same tree; nothing to do;
- ``fork``: the same size, another root or head: the broker signed two trails;
- ``extend``: a larger tree; hold it once a consistency proof from the held
  size to its size verifies (:func:`proof_problem`): the old tree is a prefix;
- ``older``: a smaller tree (a broker process with a stale copy); keep the held
  one, but only once a proof from its size to the held size verifies: a trail
  cut below what the broker once signed cannot give one (the broker answers
  404: no tree of that size any more, which is itself the evidence).

Proofs come from ``GET /api/v1/transparency/consistency?first=M&second=N``
(hashes only). Any failure to prove is a fork or a shrink: the witness raises
it (docs/protocol.md, "Witnessed checkpoints"). The adapter kit does this on
every request (``adapters.kit.witness``); an authority's own software can do
the same with these functions, or run ``federator-adapter witness fetch``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from adapters.checkpoints import Checkpoint
from adapters.merkle import ProofError, frontier_root, verify_consistency

HOLD, SAME, FORK, EXTEND, OLDER = "hold", "same", "fork", "extend", "older"
#: The consistency proofs' path on the broker.
PROOF_PATH = "/api/v1/transparency/consistency"
CHECKPOINT_PATH = "/api/v1/transparency/checkpoint"
JWKS_SUFFIX = "/.well-known/jwks.json"


def judge(held: Checkpoint | None, incoming: Checkpoint) -> str:
    """What to do with ``incoming`` given the checkpoint held (see the module)."""
    if held is None:
        return HOLD
    if incoming.tree_size == held.tree_size:
        same = (incoming.root_hash, incoming.head_hash) == (held.root_hash, held.head_hash)
        return SAME if same else FORK
    return EXTEND if incoming.tree_size > held.tree_size else OLDER


def sizes_to_prove(held: Checkpoint | None, incoming: Checkpoint) -> tuple[int, int]:
    """``(first, second)`` to ask the broker's proof of (``hold``: its own frontier)."""
    if held is None:
        return incoming.tree_size, incoming.tree_size
    small, large = sorted((held.tree_size, incoming.tree_size))
    return small, large


def fork_reason(held: Checkpoint, incoming: Checkpoint) -> str:
    return (f"the broker signed two different trees of {held.tree_size} records: "
            f"root {held.root_hash} (held since {held.at}) and {incoming.root_hash} "
            f"(signed {incoming.at})")


def proof_problem(held: Checkpoint, incoming: Checkpoint, answer: Mapping[str, Any]
                  ) -> str | None:
    """Why the broker's proof ``answer`` does not show the smaller of the two trees
    to be a prefix of the larger, or None when it does."""
    small, large = sorted((held, incoming), key=lambda c: c.tree_size)
    try:
        if (answer.get("first"), answer.get("second")) != (small.tree_size, large.tree_size):
            raise ProofError("the proof is for other sizes")
        proof = [bytes.fromhex(str(p)) for p in answer.get("proof") or []]
        verify_consistency(small.tree_size, large.tree_size, proof,
                           bytes.fromhex(small.root_hash), bytes.fromhex(large.root_hash))
    except (ProofError, ValueError, TypeError) as e:
        return (f"the broker's tree of {large.tree_size} records does not extend the tree "
                f"of {small.tree_size} records it signed (root {small.root_hash}): {e}")
    return None


def gone_reason(held: Checkpoint, detail: str) -> str:
    """The broker cannot prove the tree held: it no longer has it."""
    return (f"the broker can no longer prove the tree of {held.tree_size} records it "
            f"signed at {held.at} (root {held.root_hash}): {detail}")


def checked_frontier(checkpoint: Checkpoint, frontier: Sequence[Any]) -> tuple[str, ...]:
    """The frontier of ``checkpoint``'s tree when it folds to the signed root,
    else empty (it only narrows a later search; the proof is what counts)."""
    try:
        hashes = [bytes.fromhex(str(h)) for h in frontier]
    except ValueError:
        return ()
    if hashes and frontier_root(hashes).hex() == checkpoint.root_hash:
        return tuple(h.hex() for h in hashes)
    return ()


def proof_url_for(jwks_url: str) -> str | None:
    """The broker's proof endpoint next to its JWKS (``…/.well-known/jwks.json``)."""
    if jwks_url.endswith(JWKS_SUFFIX):
        return jwks_url[: -len(JWKS_SUFFIX)] + PROOF_PATH
    return None
