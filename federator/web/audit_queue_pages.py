"""The auditor's casework (role ``auditor``): every lookup one row in plain
words, the flagged ones as a queue, and a case page where a review is changed.

Each view is audited before it shows anything (``audit.lookups_listed``,
``audit.queue_viewed``, ``audit.case_viewed``); each review change is an
``audit.review.*`` record, and the review shown is folded from those records
(``federator.audit.reviews``), never kept anywhere else.
"""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, g, redirect, request, url_for

from federator.api.audit import audited
from federator.audit import case_queries as cq
from federator.audit.case_schemas import LookupQuery, QueueQuery
from federator.audit.casework import FLAG_WORDS, KIND_WORDS
from federator.audit.flags import FLAGS
from federator.audit.reviews import STATE_WORDS, review_change, review_of
from federator.audit.schemas import MAX_SEQ
from federator.audit.trail import AuditUnavailable
from federator.auth.access import require_page_roles
from federator.names import AUDIT_CASE_VIEWED, AUDIT_LOOKUPS_LISTED, AUDIT_QUEUE_VIEWED
from federator.web.audit_pages import auditor_page
from federator.web.blueprint import PageBlueprint, add_nav_entry
from federator.web.casework_view import read_query, registry_names, row_view

blp = require_page_roles(PageBlueprint("web_audit_queue", __name__,
                                       template_folder="templates"), "auditor")

# an auditor starts at the queue (``/`` goes to a role's first entry)
add_nav_entry("web_audit_queue.queue", "Review queue", "auditor", before="web_audit.records")
add_nav_entry("web_audit_queue.lookups", "Lookups", "auditor", before="web_audit.records")
add_nav_entry("web_audit_overview.overview", "Overview", "auditor", before="web_audit.records")

LOOKUP_FILTERS = ["from", "to", "actor", "organisation", "basis", "kind", "flag", "flagged",
                  "cursor"]
QUEUE_FILTERS = ["state", "from", "to", "organisation", "flag", "cursor"]
FLAG_CHOICES = [("", "Any flag"), *((f, FLAG_WORDS.get(f, f.replace("_", " ").capitalize()))
                                    for f in FLAGS)]
KIND_CHOICES = [("", "Every kind"), *KIND_WORDS.items()]
STATE_CHOICES = [*STATE_WORDS.items(), ("all", "Every state")]
PAGE = 25


def _services() -> Any:
    return current_app.extensions["federator"]


def _names() -> tuple[dict[str, str], dict[str, list[str]]]:
    return registry_names(_services().registry.all())


def _described(loaded: dict[str, Any]) -> dict[str, Any]:
    return {("from" if k == "from_" else k): (v.isoformat() if hasattr(v, "isoformat") else v)
            for k, v in loaded.items() if v is not None}


def _filter(loaded: dict[str, Any]) -> cq.LookupFilter:
    return cq.LookupFilter(start=loaded.get("from_"), end=loaded.get("to"),
                           actor=loaded.get("actor"), organisation=loaded.get("organisation"),
                           basis=loaded.get("basis"), kind=loaded.get("kind"),
                           flag=loaded.get("flag"), flagged=loaded.get("flagged"))


def _next(endpoint: str, values: dict[str, str], cursor: int | None) -> str | None:
    if cursor is None:
        return None
    kept = {k: v for k, v in values.items() if v and k != "cursor"}
    return url_for(endpoint, **kept, cursor=cursor)


# -- every lookup, one row each ------------------------------------------------------


@blp.route("/audit/lookups")
def lookups() -> Any:
    loaded, values, summary, errors = read_query(LookupQuery(), request.args, LOOKUP_FILTERS)
    context = {"values": values, "errors": summary, "field_errors": errors,
               "flags": FLAG_CHOICES, "kinds": KIND_CHOICES}
    if loaded is None:
        return auditor_page("web/audit/lookups.html", 422, rows=[], next_url=None,
                            title="Error: Lookups", **context)
    audited(AUDIT_LOOKUPS_LISTED, query=_described(loaded), via="web")
    cursor = int(loaded["cursor"]) if loaded.get("cursor") else None
    rows, after = cq.lookup_page(_services().trail.engine, _filter(loaded), cursor=cursor,
                                 limit=PAGE)
    names, areas = _names()
    return auditor_page("web/audit/lookups.html", title="Lookups",
                        rows=[row_view(r, names, areas) for r in rows],
                        next_url=_next(".lookups", values, after), **context)


# -- the queue of flagged lookups -----------------------------------------------------


@blp.route("/audit/queue")
def queue() -> Any:
    loaded, values, summary, errors = read_query(QueueQuery(), request.args, QUEUE_FILTERS)
    values["state"] = values["state"] or "open"
    context = {"values": values, "errors": summary, "field_errors": errors,
               "flags": FLAG_CHOICES, "states": STATE_CHOICES}
    if loaded is None:
        return auditor_page("web/audit/queue.html", 422, rows=[], next_url=None, counts={},
                            title="Error: Review queue", **context)
    audited(AUDIT_QUEUE_VIEWED, query=_described(loaded), via="web")
    engine = _services().trail.engine
    cases = cq.flagged_cases(engine, cq.LookupFilter(
        start=loaded.get("from_"), end=loaded.get("to"),
        organisation=loaded.get("organisation"), flag=loaded.get("flag")))
    reviews = cq.reviews(engine, after=min(cases, default=0))
    counts = {state: 0 for state in STATE_WORDS}
    for case in cases:
        counts[review_of(reviews, case).state] += 1
    state, cursor = loaded["state"], int(loaded["cursor"]) if loaded.get("cursor") else None
    chosen = [c for c in cases if (state == "all" or review_of(reviews, c).state == state)
              and (cursor is None or c < cursor)]
    page = chosen[:PAGE]
    found = cq.rows_at(engine, page)
    names, areas = _names()
    rows = [row_view(found[c], names, areas, review_of(reviews, c)) for c in page if c in found]
    return auditor_page("web/audit/queue.html", title="Review queue", rows=rows, counts=counts,
                        next_url=_next(".queue", values, page[-1] if len(chosen) > PAGE
                                       else None), **context)


# -- one case ----------------------------------------------------------------------------


def _case_page(seq: int, status: int = 200, *, form: dict[str, str] | None = None,
               problems: dict[str, str] | None = None) -> Any:
    engine = _services().trail.engine
    row = cq.rows_at(engine, [seq]).get(seq) if seq <= MAX_SEQ else None
    if row is None:
        abort(404)
    review = review_of(cq.reviews(engine, case=seq), seq)
    names, areas = _names()
    problems = problems or {}
    order = ["based_on", "state", "outcome", "note"]
    summary = [{"text": problems[k], "href": "#review-history" if k == "based_on"
                else f"#review-{k}"} for k in order if k in problems]
    form = form or {"state": review.state, "outcome": review.outcome, "note": ""}
    return auditor_page("web/audit/case.html", status, row=row_view(row, names, areas, review),
                        review=review, states=list(STATE_WORDS.items()), form=form,
                        problems=problems, errors=summary,
                        title=f"{'Error: ' if summary else ''}{row.kind_words} {seq}")


@blp.route("/audit/cases/<int:seq>")
def case(seq: int) -> Any:
    if seq > MAX_SEQ:  # beyond a database integer: no such lookup
        abort(404)
    audited(AUDIT_CASE_VIEWED, case=seq, via="web")
    return _case_page(seq)


@blp.route("/audit/cases/<int:seq>", methods=["POST"])
def review(seq: int) -> Any:
    # CSRFProtect (federator._web_security) has checked the form's token
    engine = _services().trail.engine
    if seq > MAX_SEQ or seq not in cq.rows_at(engine, [seq]):
        abort(404)
    form = {k: request.form.get(k) or "" for k in ("state", "outcome", "note", "based_on")}
    current = review_of(cq.reviews(engine, case=seq), seq)
    based_on = int(form["based_on"]) if form["based_on"].isdigit() else -1
    stale = {"based_on": "Another auditor changed this review while you had it open: "
             "read their change below, then make yours again."}
    if based_on != current.last_seq:
        return _case_page(seq, 409, form=form, problems=stale)
    change = review_change(current, state=form["state"], outcome=form["outcome"],
                           note=form["note"])
    if isinstance(change, dict):
        return _case_page(seq, 422, form=form, problems=change)
    event, fields = change
    try:
        written = _services().trail.append_unless(
            lambda conn: cq.reviewed_since(conn, seq, current.last_seq), event,
            **g.principal.actor(g.role), **fields, via="web")
    except AuditUnavailable:
        abort(503)
    if written is None:  # another auditor's change landed first
        return _case_page(seq, 409, form=form, problems=stale)
    return redirect(url_for(".case", seq=seq, _anchor="review-history"), 303)
