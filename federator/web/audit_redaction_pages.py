"""The auditor's page to redact one sealed free text field of a record, with a
reason (role ``auditor``): ``federator.audit.retention.redact``, as the API's
``POST /api/v1/audit/records/<seq>/redact``. Opening the page shows the text,
so it is audited as a view (``audit.record_viewed``); the redaction writes its
own ``audit.redacted`` record."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, g, redirect, request, url_for
from flask_wtf import FlaskForm
from govuk_frontend_wtf.wtforms_widgets import GovSubmitInput, GovTextInput
from wtforms import StringField, SubmitField

from federator.api.audit import audited
from federator.audit import queries
from federator.audit.redaction import SEALED_FIELDS, redactable
from federator.audit.retention import REASON_MAX, RetentionError, redact
from federator.audit.schemas import MAX_SEQ
from federator.audit.trail import AuditUnavailable
from federator.auth.access import require_page_roles
from federator.inputs import UsableText, form_text_errors
from federator.names import AUDIT_RECORD_VIEWED
from federator.web.blueprint import PageBlueprint, render_page
from federator.web.forms import csrf_refused

blp = require_page_roles(
    PageBlueprint("web_audit_redaction", __name__, template_folder="templates"), "auditor")

FIELD_WORDS = {"purpose": "Purpose", "justification": "Justification",
               "basis.justification": "Safeguarding justification",
               "basis.reference": "Basis reference"}
FIELDS = "any(" + ", ".join(f'"{f}"' for f in SEALED_FIELDS) + ")"


class RedactForm(FlaskForm):
    reason = StringField("Why are you redacting it?", widget=GovTextInput(),
                         validators=[UsableText(REASON_MAX)],
                         description="Kept in the audit trail with the redaction, with your "
                                     "name and the time. Write no personal details here.")
    submit = SubmitField("Redact this text", widget=GovSubmitInput())


def _text_of(record: dict[str, Any], field: str) -> Any:
    head, _, key = field.rpartition(".")
    parent = record.get(head) if head else record
    return parent.get(key) if isinstance(parent, dict) else None


@blp.route(f"/audit/records/<int:seq>/redact/<{FIELDS}:field>", methods=["GET", "POST"])
def redact_page(seq: int, field: str) -> Any:
    if seq > MAX_SEQ:
        abort(404)
    trail = current_app.extensions["federator"].trail
    form = RedactForm()
    problem: str | None = None
    status = 200
    if request.method == "POST":
        csrf_refused(form)
        reason = (form.reason.data or "").strip()
        if form_text_errors(form) or form.reason.errors:
            problem = (list(form.reason.errors) or ["Enter the reason as plain text."])[0]
            form.reason.errors = [problem]
        elif not reason:
            problem = "Say why you are redacting this text"
            form.reason.errors = [problem]
        else:
            try:
                redact(trail, seq, field, reason, g.principal.actor(g.role))
            except RetentionError as e:
                if e.errors.get("record", "").startswith("There is no record"):
                    abort(404)
                problem = next(iter(e.errors.values()))
            except AuditUnavailable:
                abort(503)
            else:
                flash(f"Redacted: the {FIELD_WORDS[field].lower()} of record {seq} is gone; "
                      "the record shows who redacted it and why.")
                return redirect(url_for("web_audit.record", seq=seq), 303)
        status = 422
    audited(AUDIT_RECORD_VIEWED, record=seq, via="web", redacting=field)
    record = queries.get_record(trail.engine, seq)
    if record is None:
        abort(404)
    if problem is None and field not in redactable(record):
        problem, status = "This text cannot be redacted: " + _why_not(record, field), 409
    heading = f"Redact the {FIELD_WORDS[field].lower()} of record {seq}"
    return render_page("web/audit/redact.html", status, no_store=True, form=form,
                       record=record, field=field, field_words=FIELD_WORDS[field],
                       text=_text_of(record, field), problem=problem,
                       can_redact=field in redactable(record), heading=heading,
                       title=f"Error: {heading}" if problem else heading)


def _why_not(record: dict[str, Any], field: str) -> str:
    if record.get("pruned"):
        return "the record was pruned, its text with it."
    if not record.get("sealed"):
        return ("the record was written before free text was sealed (record format 1): "
                "its text can go only with the whole record, by pruning.")
    if field in (record.get("redacted") or {}):
        return "it was redacted already."
    return f"the record holds no {FIELD_WORDS[field].lower()}."
