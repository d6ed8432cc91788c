"""The auditor's pages (role ``auditor``): the records with filters, paging and
sort, a record's detail, "Was this child looked up?", export, and the trail's
verification status on every page.

Views translate: the query and body schemas are the API's
(``federator.audit.schemas``), the reading is ``federator.audit.queries``, and
every action is audited with the API's own ``audited`` (``via: "web"``), so
nothing is shown that was not recorded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Response,
    abort,
    current_app,
    redirect,
    request,
    stream_with_context,
    url_for,
)
from marshmallow import ValidationError

from federator.api.audit import _described, _filter, audited
from federator.audit import queries
from federator.audit.alerts import Alert, recent_alerts
from federator.audit.export import lines
from federator.audit.flags import FLAGS
from federator.audit.redaction import VIEW_KEYS, redactable
from federator.audit.schemas import CheckChildBody, ExportQuery, RecordQuery
from federator.auth.access import require_page_roles
from federator.names import (
    AUDIT_CHECKPOINT_READ,
    AUDIT_CHILD_CHECKED,
    AUDIT_EXPORTED,
    AUDIT_RECORD_VIEWED,
    AUDIT_RECORDS_LISTED,
    AUDIT_VERIFIED,
)
from federator.web.audit_forms import (
    EVENT_CHOICES,
    CheckChildForm,
    child_from_form,
    filter_values,
    read_posted,
    record_query,
    show_errors,
)
from federator.web.audit_status import trail_status, verify_all
from federator.web.blueprint import PageBlueprint, add_nav_entry, render_page
from federator.web.forms import _flatten, error_summary

blp = require_page_roles(PageBlueprint("web_audit", __name__, template_folder="templates"),
                         "auditor")

add_nav_entry("web_audit.records", "Audit trail", "auditor")
add_nav_entry("web_audit.check_child", "Was this child looked up?", "auditor")
add_nav_entry("web_audit.export", "Export", "auditor")

FILTER_ORDER = ["from", "to", "actor", "organisation", "authority", "basis", "event",
                "flag", "flagged", "sort", "cursor"]
FLAG_CHOICES = [("", "Any flag, or none"),
                *((f, f.replace("_", " ").capitalize()) for f in FLAGS)]
CHILD_ORDER = ["nhs_number", "given_name", "family_name", "date_of_birth"]


@blp.after_request
def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def _services() -> Any:
    return current_app.extensions["federator"]


def auditor_page(template: str, status: int = 200, **context: Any) -> Any:
    """A page with the trail's verification status (see ``audit_status``) and the
    alerts of the last day (``federator.audit.alerts``)."""
    services = _services()
    return render_page(template, status, no_store=True,
                       trail=trail_status(services.trail, services.state),
                       alerts=alert_rows(recent_alerts(services.trail.engine)), **context)


def alert_rows(alerts: list[Alert]) -> list[dict[str, Any]]:
    """What the alert banner says of each (pure): the words and the filter's link."""
    words = {"sustained_volume": "sustained volume (busy hour after hour)",
             "budget_reached": "a lookup limit reached"}
    return [{"text": _alert_text(a, words),
             "href": url_for("web_audit.records", flag=a.flag, event="")} for a in alerts]


def _alert_text(a: Alert, words: Mapping[str, str]) -> str:
    many = f"{'At least ' if a.at_least else ''}{a.records}"
    if a.flag == "entry_rejected":  # no practitioner: the integrator writes it
        one = a.records == 1
        return (f"{many} queued audit {'entry' if one else 'entries'} could not be recorded "
                f"and {'was' if one else 'were'} set aside (audit_queue_rejected), in the "
                "last 24 hours.")
    return (f"{many} {'record' if a.records == 1 else 'records'} flagged for "
            f"{words.get(a.flag, a.flag)}, by {a.practitioners} "
            f"{'practitioner' if a.practitioners == 1 else 'practitioners'}, in the "
            "last 24 hours.")


def record_row(record: Mapping[str, Any]) -> dict[str, Any]:
    """What the list shows of one record (pure)."""
    outcomes = [o for o in record.get("outcomes") or [] if isinstance(o, Mapping)]
    return {
        "seq": record.get("seq"), "at": str(record.get("at", "")), "event": record.get("event"),
        "actor_id": record.get("actor_id"), "actor_role": record.get("actor_role"),
        "actor_organisation": record.get("actor_organisation"),
        "purpose": record.get("purpose"), "basis_type": record.get("basis_type"),
        "authorities": [str(a) for a in record.get("authorities") or []],
        "outcomes": [f"{o.get('id')}: {o.get('outcome')}" for o in outcomes],
        "flags": [f for f in record.get("flags") or [] if isinstance(f, Mapping)],
    }


def _messages(error: ValidationError) -> dict[str, Any]:
    return dict(error.messages) if isinstance(error.messages, dict) else {
        "form": error.messages}


# -- the records ------------------------------------------------------------------


@blp.route("/audit/records")
def records() -> Any:
    values = filter_values(request.args)
    try:
        args = RecordQuery().load(record_query(request.args))
    except ValidationError as e:
        errors = {k: _flatten(v) for k, v in _messages(e).items()}
        summary = [{"text": errors[k][0], "href": f"#filter-{k}"}
                   for k in FILTER_ORDER if k in errors]
        summary += [{"text": m, "href": "#filter-from"} for k, ms in errors.items()
                    if k not in FILTER_ORDER for m in ms]
        return auditor_page("web/audit/records.html", 422, values=values, errors=summary,
                            field_errors=errors, rows=[], next_url=None, first_url=None,
                            events=EVENT_CHOICES, flags=FLAG_CHOICES, title="Error: Audit trail")
    audited(AUDIT_RECORDS_LISTED, query=_described(args), via="web")
    page = queries.list_records(_services().trail.engine, _filter(args),
                                cursor=args["cursor"], limit=args["limit"],
                                newest_first=args["sort"] == "-seq")
    kept = {k: v for k, v in values.items() if v and k != "cursor"}
    if "event" in request.args and not values["event"]:
        kept["event"] = ""
    next_url = url_for(".records", **kept, cursor=page.next_cursor) \
        if page.next_cursor else None
    first_url = url_for(".records", **kept) if args["cursor"] else None
    return auditor_page("web/audit/records.html", values=values, errors=[], field_errors={},
                        rows=[record_row(r) for r in page.records], next_url=next_url,
                        first_url=first_url, events=EVENT_CHOICES, flags=FLAG_CHOICES,
                        title="Audit trail")


@blp.route("/audit/records/<int:seq>")
def record(seq: int) -> Any:
    audited(AUDIT_RECORD_VIEWED, record=seq, via="web")
    found = queries.get_record(_services().trail.engine, seq)
    if found is None:
        abort(404)
    covering = _services().trail.covering(seq)
    detail = {k: v for k, v in found.items() if k not in (
        "seq", "at", "event", "flags", "prev_hash", "hash", *VIEW_KEYS, "sealed", "leaf")}
    return auditor_page("web/audit/record.html", record=found, row=record_row(found),
                        redactable=redactable(found), redactions=found.get("redactions") or [],
                        detail=[(k, v if isinstance(v, str) else json.dumps(v))
                                for k, v in sorted(detail.items())],
                        checkpoint=covering.public() if covering else None,
                        title=f"Audit record {seq}")


# -- was this child looked up? --------------------------------------------------------


@blp.route("/audit/check-child", methods=["GET", "POST"])
def check_child() -> Any:
    form = CheckChildForm()
    if request.method == "GET":
        return _check_page(form)
    read_posted(form)
    body = {"child": child_from_form(form.data), "reason": (form.reason.data or "").strip()
            or None}
    errors: dict[str, Any] = {}
    try:
        loaded = CheckChildBody().load(body)
    except ValidationError as e:
        errors = _messages(e)
    placed = show_errors(form, errors, ("reason",))
    if placed:
        return _check_page(form, 422, placed.get("form"))
    key = _services().settings.audit_key
    searched, pseudonyms = queries.child_pseudonyms(loaded["child"], key)
    audited(AUDIT_CHILD_CHECKED, child_pseudonym=pseudonyms[0], pseudonyms=pseudonyms,
            searched=searched, reason=loaded.get("reason"), via="web")
    found = queries.lookups_of_child(_services().trail.engine, pseudonyms)
    return _check_page(form, searched=searched, rows=[record_row(r) for r in found])


def _check_page(form: CheckChildForm, status: int = 200, general: list[str] | None = None,
                *, searched: list[str] | None = None,
                rows: list[dict[str, Any]] | None = None) -> Any:
    summary = error_summary(form, [*CHILD_ORDER, "reason"])
    summary += [{"text": t, "href": "#nhs_number"} for t in general or []]
    title = "Was this child looked up?"
    return auditor_page("web/audit/check_child.html", status, form=form, errors=summary,
                        searched=searched, rows=rows,
                        title=f"Error: {title}" if summary else title)


# -- export and verification ------------------------------------------------------------


@blp.route("/audit/export")
def export() -> Any:
    return _export_page({"format": "csv"}, [], {})


def _export_page(values: dict[str, str], summary: list[dict[str, str]],
                 field_errors: dict[str, list[str]], status: int = 200) -> Any:
    checkpoint = _services().trail.latest()
    return auditor_page("web/audit/export.html", status, values=values, errors=summary,
                        field_errors=field_errors,
                        checkpoint=checkpoint.public() if checkpoint else None,
                        title="Error: Export" if summary else "Export the trail")


@blp.route("/audit/export/download", methods=["POST"])
def export_download() -> Any:
    """A form post with its CSRF token (CSRFProtect): the export is recorded, so a
    link from another site must not be able to make one."""
    values = {k: (request.form.get(k) or "").strip() for k in ("from", "to", "format")}
    try:
        args = ExportQuery().load({k: v for k, v in values.items() if v})
    except ValidationError as e:
        errors = {k: _flatten(v) for k, v in _messages(e).items()}
        summary = [{"text": errors[k][0], "href": f"#export-{k}"}
                   for k in ("from", "to", "format") if k in errors]
        return _export_page(values, summary, errors, 422)
    trail = _services().trail
    audited(AUDIT_EXPORTED, query=_described(args), via="web")
    f = queries.RecordFilter(start=args.get("from_"), end=args.get("to"))
    checkpoint = trail.checkpoint() or trail.latest()
    if checkpoint is not None:
        f = queries.RecordFilter(start=f.start, end=f.end, seq_to=checkpoint.tree_size)
    fmt = args["format"]

    def body() -> Iterator[str]:
        yield from lines(queries.iter_records(trail.engine, f), fmt)

    headers = {"Content-Disposition": f"attachment; filename=audit.{fmt}"}
    if checkpoint is not None:
        headers["Audit-Checkpoint"] = checkpoint.signed
    return Response(stream_with_context(body()),
                    mimetype="text/csv" if fmt == "csv" else "application/x-ndjson",
                    headers=headers)


@blp.route("/audit/checkpoint.json", methods=["POST"])
def checkpoint_download() -> Any:
    """Recorded, and may sign a checkpoint: a form post with its CSRF token too."""
    audited(AUDIT_CHECKPOINT_READ, via="web")
    trail = _services().trail
    checkpoint = trail.checkpoint() or trail.latest()
    if checkpoint is None:
        abort(404)
    return Response(json.dumps(checkpoint.public(), indent=2), mimetype="application/json",
                    headers={"Content-Disposition":
                             f"attachment; filename=checkpoint-{checkpoint.tree_size}.json"})


@blp.route("/audit/verify", methods=["POST"])
def verify() -> Any:
    """The full walk, on an auditor's request; audited as the API's verify is."""
    # CSRFProtect (federator._web_security) has checked the form's token
    services = _services()
    known = verify_all(services.trail, services.state)
    result = {"ok": True, "count": known.through} if known.ok else {
        "ok": False, "count": known.through, "seq": known.bad_seq, "reason": known.reason}
    audited(AUDIT_VERIFIED, range={"from": 1, "to": None}, result=result, via="web")
    back = request.form.get("next") or ""
    parts = urlsplit(back)
    if parts.scheme or parts.netloc or not back.startswith("/audit/"):
        back = url_for(".records")
    return redirect(back, 303)

