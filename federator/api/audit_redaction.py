"""``POST /api/v1/audit/records/<seq>/redact``: an auditor redacts one sealed free
text field of a record, with a reason (role ``auditor`` only). The redaction is
itself the audit record (``audit.redacted``: who, why, which record and field),
written before the text goes; ``federator.audit.retention.redact`` does both."""

from __future__ import annotations

from typing import Any

from flask import current_app, g
from flask_smorest import abort
from marshmallow import Schema, fields, validate

from federator.api.bodies import InputBlueprint
from federator.audit.redaction import SEALED_FIELDS
from federator.audit.retention import REASON_MAX, RetentionError, redact
from federator.audit.schemas import MAX_SEQ, Strict
from federator.audit.trail import AuditUnavailable
from federator.auth.access import require_roles
from federator.inputs import Text

blp = require_roles(
    InputBlueprint("audit-redaction", __name__, url_prefix="/api/v1/audit",
                   description="Redaction of a record's free text, with a reason"),
    "auditor",
)


class RedactBody(Strict):
    field = Text(max_length=40, required=True, validate=validate.OneOf(
        SEALED_FIELDS, error=f"Give the field to redact: one of {', '.join(SEALED_FIELDS)}."),
        metadata={"description": "The sealed free text field: " + ", ".join(SEALED_FIELDS)})
    reason = Text(max_length=REASON_MAX, required=True, validate=validate.Length(
        min=1, error="Give the reason for the redaction."),
        metadata={"description": "Why; kept in the audit.redacted record (no personal data)"})


class RedactionAnswer(Schema):
    record = fields.Integer()
    field = fields.String()
    redaction = fields.Integer(metadata={"description": "The audit.redacted record"})
    reason = fields.String()


def redact_or_refuse(seq: int, field: str, reason: str, actor: dict[str, Any]) -> dict[str, Any]:
    """The redaction, or the answer that says why not (404, 422 naming the field,
    503 when the trail cannot be written); shared with the auditor's page."""
    if seq > MAX_SEQ:
        abort(404, message=f"There is no record {seq}.")
    try:
        return redact(current_app.extensions["federator"].trail, seq, field, reason, actor)
    except RetentionError as e:
        if e.errors.get("record", "").startswith("There is no record"):
            abort(404, message=e.errors["record"])
        if "database" in e.errors:
            abort(503, message="The redaction could not be written: " + e.errors["database"])
        abort(422, errors={"json": {k: [v] for k, v in e.errors.items()}})
    except AuditUnavailable:
        abort(503, message="The audit trail cannot be written, so nothing was redacted.")


@blp.route("/records/<int:seq>/redact", methods=["POST"])
@blp.arguments(RedactBody)
@blp.response(200, RedactionAnswer)
@blp.alt_response(404, description="No record with this number")
@blp.alt_response(422, description="Not redactable: the field named says why")
def redact_record(body: dict[str, Any], seq: int) -> Any:
    """Redact ``field`` of record ``seq``: its text and salt go, its salted hash
    stays, so the trail still verifies; the record then shows who redacted it,
    when and why. Records written before sealed free text (format 1) can lose
    their text only with their whole body, by pruning (422 says so)."""
    return redact_or_refuse(seq, body["field"], body["reason"], g.principal.actor(g.role))
