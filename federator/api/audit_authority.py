"""``/api/v1/audit/authority``: an authority administrator's view of the
lookups that reached its own authority, and nothing else."""

from __future__ import annotations

from typing import Any

from flask import current_app, g
from flask_smorest import Blueprint, abort

from federator.audit import queries
from federator.audit.authority_proofs import NotCovered, NotReached, authority_proof
from federator.audit.merkle import ProofError
from federator.audit.schemas import AuthorityQuery, PageSchema
from federator.audit.trail import AuditUnavailable
from federator.auth.access import require_roles
from federator.names import AUDIT_AUTHORITY_VIEWED, AUDIT_PROOF_READ

blp = require_roles(
    Blueprint("audit-authority", __name__, url_prefix="/api/v1/audit/authority",
              description="Lookups that reached your authority"),
    "authority-admin",
)


@blp.route("/lookups")
@blp.arguments(AuthorityQuery, location="query")
@blp.response(200, PageSchema)
def authority_lookups(args: dict[str, Any]) -> Any:
    """Newest first: when, who asked (role and organisation), why, on what basis,
    and your authority's outcome. No child identity, no other authority."""
    authority, trail = _audited(AUDIT_AUTHORITY_VIEWED)
    f = queries.RecordFilter(start=args.get("from_"), end=args.get("to"))
    page = queries.authority_lookups(trail.engine, authority, f, cursor=args["cursor"],
                                     limit=args["limit"])
    return {"records": page.records, "next_cursor": page.next_cursor}


@blp.route("/lookups/<lookup_id>/proof")
@blp.response(200)
def authority_lookup_proof(lookup_id: str) -> Any:
    """Your receipt of one lookup that reached your authority: each of its records
    naming you (as the list shows it), with its leaf hash, its index and its RFC
    9162 audit path up to a signed checkpoint. Check the checkpoint with the keys
    at /.well-known/federator-keys.json. 404 for a lookup that did not reach you."""
    authority, trail = _audited(AUDIT_PROOF_READ, lookup=lookup_id[:64])
    try:
        return authority_proof(trail, lookup_id, authority)
    except NotReached:
        abort(404, message="No such lookup reached your authority.")
    except NotCovered as e:
        abort(503, message=str(e))
    except ProofError as e:
        abort(409, message=f"The trail does not match its checkpoint: {e}")


def _audited(event: str, **fields: Any) -> tuple[str, Any]:
    """The caller's authority and the trail, once the read is in the trail."""
    authority = g.principal.authority
    if not authority:
        abort(403, message="Your sign-in names no authority.")
    trail = current_app.extensions["federator"].trail
    try:
        trail.append(event, **g.principal.actor(g.role), authority=authority, **fields)
    except AuditUnavailable:
        abort(503, message="The audit trail cannot be written, so nothing is shown.")
    return authority, trail
