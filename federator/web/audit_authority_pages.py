"""``/authority/lookups`` (role ``authority-admin``): the lookups that reached the
administrator's own authority, and nothing else: when, who asked (role and
organisation), why, on what basis, and this authority's outcome. The same
reading as the API's (``queries.authority_lookups``), audited the same way."""

from __future__ import annotations

from typing import Any

from flask import Response, abort, current_app, g, request, url_for
from marshmallow import ValidationError

from federator.audit import queries
from federator.audit.schemas import AuthorityQuery
from federator.audit.trail import AuditUnavailable
from federator.auth.access import require_page_roles
from federator.names import AUDIT_AUTHORITY_VIEWED
from federator.web.blueprint import PageBlueprint, add_nav_entry, render_page
from federator.web.results import OUTCOME_TEXT
from federator.web.times import uk_time

blp = require_page_roles(
    PageBlueprint("web_audit_authority", __name__, template_folder="templates"),
    "authority-admin")

add_nav_entry("web_audit_authority.lookups", "Lookups that reached us", "authority-admin")


@blp.after_request
def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


@blp.route("/authority/lookups")
def lookups() -> Any:
    authority = g.principal.authority
    if not authority:
        abort(403)
    try:
        args = AuthorityQuery().load({k: v for k, v in request.args.items()
                                      if k in ("cursor", "from", "to") and v.strip()})
    except ValidationError:
        abort(400)
    trail = current_app.extensions["federator"].trail
    try:
        trail.append(AUDIT_AUTHORITY_VIEWED, **g.principal.actor(g.role),
                     authority=authority, via="web")
    except AuditUnavailable:
        abort(503)
    f = queries.RecordFilter(start=args.get("from_"), end=args.get("to"))
    page = queries.authority_lookups(trail.engine, authority, f, cursor=args["cursor"],
                                     limit=25)
    rows = [{**r, "when": uk_time(r.get("at")),
             "outcome_text": OUTCOME_TEXT.get(r.get("outcome") or "", ("", ""))[0]}
            for r in page.records]
    return render_page(
        "web/audit/authority_lookups.html", no_store=True, rows=rows, authority=authority,
        next_url=url_for(".lookups", cursor=page.next_cursor) if page.next_cursor else None,
        first_url=url_for(".lookups") if args["cursor"] else None,
        title="Lookups that reached your authority")
