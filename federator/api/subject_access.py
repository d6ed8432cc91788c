"""``POST /api/v1/audit/subject-access``: "who asked about my child?" (role
``auditor``; the data protection officer works as an auditor). Audited as
``audit.subject_access`` before anything is shown."""

from __future__ import annotations

from typing import Any

from flask import current_app
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from federator.api.audit import audited
from federator.api.bodies import InputBlueprint
from federator.audit.schemas import Strict
from federator.audit.subject_access import subject_access
from federator.auth.access import require_roles
from federator.inputs import Text
from federator.lookup.free_text import child_in_text, identity_of
from federator.lookup.schemas import ChildSchema
from federator.names import AUDIT_SUBJECT_ACCESS

blp = require_roles(
    InputBlueprint("audit-subject-access", __name__, url_prefix="/api/v1/audit",
              description="Subject access: every lookup about one child"),
    "auditor",
)


class SubjectAccessBody(Strict):
    child = fields.Nested(ChildSchema, required=True)
    request_reference = Text(max_length=100, required=True, free_text=True,
                             validate=validate.Length(
        min=1, error="Enter the subject access request's reference."))

    @validates_schema
    def reference_holds_no_child(self, data: dict[str, Any], **_: Any) -> None:
        problem = child_in_text(data.get("request_reference") or "",
                                identity_of(data.get("child")))
        if problem:
            raise ValidationError({"request_reference": [problem]})


class SubjectAuthorityOutcome(Schema):
    id = fields.String()
    outcome = fields.String(allow_none=True)


class SubjectLookup(Schema):
    lookup_id = fields.String()
    at = fields.String()
    organisation = fields.String(allow_none=True)
    role = fields.String(allow_none=True)
    purpose = fields.String(allow_none=True)
    basis_type = fields.String(allow_none=True)
    authorities = fields.List(fields.Nested(SubjectAuthorityOutcome))
    found_by = fields.String(metadata={
        "description": "details: recorded under the identity searched; record_match: "
                       "typed otherwise, but an authority matched it to the same record "
                       "as a lookup that was (check it is this child)"})


class SubjectAccessAnswer(Schema):
    request_reference = fields.String()
    searched = fields.List(fields.String(), metadata={
        "description": "Which identities were searched: nhs_number, name_dob"})
    lookups = fields.List(fields.Nested(SubjectLookup))
    records_from = fields.String(allow_none=True, metadata={
        "description": "When the trail's oldest record still held was written (UTC): "
                       "lookups before it are not in the report, their records pruned "
                       "after the retention period; null for an empty trail"})
    pruned_on = fields.String(allow_none=True, metadata={
        "description": "When records were last pruned; null when never"})
    to_review = fields.List(fields.Nested(SubjectLookup), metadata={
        "description": "Safeguarding and section 47 lookups, and lookups found "
                       "through an authority's match: a person decides on these before "
                       "disclosure"})


def run_subject_access(child: dict[str, Any], request_reference: str, **extra: Any
                       ) -> dict[str, Any]:
    """Pseudonymise, audit (503 when the trail cannot be written), then report."""
    services = current_app.extensions["federator"]
    report, pseudonyms = subject_access(services.trail.engine, child,
                                        services.settings.audit_key, request_reference)
    audited(AUDIT_SUBJECT_ACCESS, child_pseudonym=pseudonyms[0] if pseudonyms else None,
            pseudonyms=pseudonyms, searched=report["searched"],
            request_reference=request_reference, found=len(report["lookups"]),
            to_review=len(report["to_review"]), **extra)
    return report


@blp.route("/subject-access", methods=["POST"])
@blp.arguments(SubjectAccessBody)
@blp.response(200, SubjectAccessAnswer)
def subject_access_report(body: dict[str, Any]) -> Any:
    """Every lookup about the child: when, the asking organisation and role, purpose,
    basis type, the authorities asked and their outcomes. The child is searched by
    NHS number and by name with date of birth when both are given."""
    return run_subject_access(body["child"], body["request_reference"].strip())
