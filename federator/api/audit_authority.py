"""``/api/v1/audit/authority``: an authority administrator's view of the
lookups that reached its own authority, and nothing else."""

from __future__ import annotations

from typing import Any

from flask import current_app, g
from flask_smorest import Blueprint, abort

from federator.audit import queries
from federator.audit.schemas import AuthorityQuery, PageSchema
from federator.audit.trail import AuditUnavailable
from federator.auth.access import require_roles
from federator.names import AUDIT_AUTHORITY_VIEWED

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
    authority = g.principal.authority
    if not authority:
        abort(403, message="Your sign-in names no authority.")
    trail = current_app.extensions["federator"].trail
    try:
        trail.append(AUDIT_AUTHORITY_VIEWED, **g.principal.actor(g.role),
                     authority=authority)
    except AuditUnavailable:
        abort(503, message="The audit trail cannot be written, so nothing is shown.")
    f = queries.RecordFilter(start=args.get("from_"), end=args.get("to"))
    page = queries.authority_lookups(trail.engine, authority, f, cursor=args["cursor"],
                                     limit=args["limit"])
    return {"records": page.records, "next_cursor": page.next_cursor}
