"""What anyone may read to witness the trail (no sign-in): the latest signed
checkpoint, consistency proofs between sizes of the tree, and every key the
broker ever signed with. Only hashes and signatures: nothing about a lookup.

Witnesses (the adapter kit, or an authority's own software: docs/protocol.md,
"Witnessed checkpoints") hold the newest checkpoint they have seen and, before
holding a newer one, check that it extends theirs. None of these reads is
written to the trail: a public read must not let anyone grow it.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app
from flask_smorest import abort
from marshmallow import fields, validate

from federator.api import proof_limit
from federator.api.bodies import InputBlueprint
from federator.audit import tree_store
from federator.audit.schemas import MAX_SEQ, Strict
from federator.audit.trail import AuditTrail
from federator.auth.access import public

blp = public(InputBlueprint(
    "transparency", __name__,
    description="Witnessing the audit trail: signed checkpoints, consistency proofs, keys"))

CACHE = {"Cache-Control": "public, max-age=5"}
log = logging.getLogger(__name__)


class ProofQuery(Strict):
    first = fields.Integer(required=True, validate=validate.Range(min=1, max=MAX_SEQ))
    second = fields.Integer(required=True, validate=validate.Range(min=1, max=MAX_SEQ))


def _trail() -> AuditTrail:
    trail: AuditTrail = current_app.extensions["federator"].trail
    return trail


@blp.route("/api/v1/transparency/checkpoint")
@blp.response(200)
@blp.alt_response(404, description="Nothing is signed yet")
def latest() -> Any:
    """The latest signed checkpoint: ``log``, ``tree_size``, ``root_hash``,
    ``head_hash``, ``at``, ``kid`` and ``signed`` (JWS compact, ES256)."""
    checkpoint = _trail().latest()
    if checkpoint is None:
        abort(404, message="Nothing is signed yet.")
    return checkpoint.public(), 200, CACHE


@blp.route("/api/v1/transparency/consistency")
@blp.arguments(ProofQuery, location="query")
@blp.response(200)
@blp.alt_response(404, description="No signed checkpoint covers the second size")
@blp.alt_response(503, description="The proof cannot be made now (not evidence of anything)")
@blp.alt_response(429, description="Too many proofs from this address "
                  "(`FEDERATOR_PROOFS_PER_MINUTE`); see Retry-After")
def consistency(args: dict[str, Any]) -> Any:
    """RFC 9162 consistency proof that the tree of ``first`` records is a prefix
    of the tree of ``second`` (no later than the latest signed checkpoint), and
    the ``frontier`` of ``second`` (the roots of the perfect subtrees it splits
    into, largest first; their RFC 9162 fold is its root). Hex SHA-256 hashes."""
    limited = proof_limit.refused()
    if limited is not None:
        return limited
    first, second = args["first"], args["second"]
    if first > second:
        abort(422, errors={"query": {"second": ["Must not be smaller than 'first'."]}})
    latest = _trail().latest()
    if latest is None or latest.tree_size < second:
        abort(404, message=f"No signed checkpoint covers record {second}.")
    try:
        answer = _proof(_trail(), first, second)
    except tree_store.TreeUnavailable:
        abort(503, message="The proof cannot be made now: try again shortly.")
    if answer is None:
        abort(404, message=f"The trail holds fewer than {second} records.")
    return answer, 200, CACHE


def _proof(trail: AuditTrail, first: int, second: int) -> dict[str, Any] | None:
    """From the stored tree's O(log n) nodes (``federator.audit.tree_store``).
    Where the broker signed ``first`` or ``second``, the answer is checked against
    those roots and a mismatch logged, but the answer is given as the tree has it:
    the witness asking checks it against what it holds and raises what it sees."""
    found = tree_store.consistency(trail.engine, first, second)
    if found is None:
        return None
    proof, frontier = found
    problem = tree_store.consistency_problem(first, _signed_root(trail, first), second,
                                             _signed_root(trail, second), proof, frontier)
    if problem is not None:
        log.error("audit tree: the consistency proof from %s to %s records does not "
                  "agree with the signed checkpoints (%s): run `federator audit verify`",
                  first, second, problem)
    return {"first": first, "second": second, "proof": [p.hex() for p in proof],
            "frontier": [h.hex() for h in frontier]}


def _signed_root(trail: AuditTrail, size: int) -> str | None:
    checkpoint = trail.covering(size)
    return checkpoint.root_hash if checkpoint and checkpoint.tree_size == size else None


@blp.route("/.well-known/federator-keys.json")
@blp.response(200)
def keys() -> Any:
    """Every key the broker ever signed with, retired ones included, each a
    public JWK with ``created_at`` and ``retires_at`` (seconds since the epoch;
    null: not retired) and ``status`` (``current``, ``retiring``, ``retired``).
    For checking checkpoints; requests are checked against
    ``/.well-known/jwks.json``, which holds only keys not yet retired."""
    return current_app.extensions["federator"].keys.history_jwks(), 200, {
        "Cache-Control": "public, max-age=300"}
