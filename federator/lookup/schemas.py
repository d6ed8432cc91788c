"""The lookup API's request and answer schemas (marshmallow, documented by flask-smorest)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, ClassVar

import nhs_number
from marshmallow import (
    Schema,
    ValidationError,
    fields,
    post_load,
    pre_load,
    validate,
    validates,
    validates_schema,
)

from federator.inputs import InputSchema, Text
from federator.lookup.consent import CONSENT_GIVERS, STATUTORY_POWERS
from federator.lookup.free_text import lookup_text_problems
from federator.lookup.scripts import mixed_message, mixed_scripts
from federator.names import OUTCOMES

POSTCODE = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}\Z")
GSS_CODE = re.compile(r"^[EWSN][0-9]{8}\Z")


def one_script(value: str) -> None:
    """A name part mixing scripts (a look-alike Cyrillic letter) is refused."""
    found = mixed_scripts(value)
    if found:
        raise ValidationError(mixed_message(found))


NAME = [validate.Length(min=1), one_script]


class Strict(InputSchema):
    """Unknown fields refused; every string checked (federator.inputs)."""


class ChildSchema(Strict):
    nhs_number = Text(max_length=30, load_default=None, allow_none=True,
                      metadata={"example": "9434765919"})
    given_name = Text(max_length=100, load_default=None, allow_none=True, validate=NAME)
    family_name = Text(max_length=100, load_default=None, allow_none=True, validate=NAME)
    date_of_birth = fields.Date(load_default=None, allow_none=True)
    postcodes = fields.List(Text(max_length=20), load_default=list,
                            validate=validate.Length(max=10))

    @pre_load
    def tidy(self, data: Any, **_: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            for key in ("nhs_number", "given_name", "family_name", "date_of_birth"):
                if isinstance(data.get(key), str):
                    data[key] = data[key].strip() or None
            if isinstance(data.get("nhs_number"), str):
                data["nhs_number"] = re.sub(r"[\s-]+", "", data["nhs_number"])
            if isinstance(data.get("postcodes"), list):
                data["postcodes"] = [
                    " ".join(p.upper().split()) if isinstance(p, str) else p
                    for p in data["postcodes"]
                ]
        return data

    @validates("nhs_number")
    def check_nhs_number(self, value: str | None, **_: Any) -> None:
        if value is None:
            return
        if not re.fullmatch(r"[0-9]{10}", value):
            raise ValidationError("An NHS number is 10 digits.")
        if not nhs_number.is_valid(value):
            raise ValidationError("This is not a valid NHS number: its check digit is wrong.")

    @validates("date_of_birth")
    def check_date_of_birth(self, value: Any, **_: Any) -> None:
        if value is not None and value > datetime.now(UTC).date():
            raise ValidationError("Date of birth must be in the past.")

    @validates("postcodes")
    def check_postcodes(self, value: list[str], **_: Any) -> None:
        bad = {str(i): ["Enter a full UK postcode, like LS6 2AB."]
               for i, p in enumerate(value) if not POSTCODE.match(p)}
        if bad:
            raise ValidationError(bad)

    @validates_schema
    def identity_given(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("nhs_number"):
            return
        missing = {k: ["Give this, or the child's NHS number."]
                   for k in ("given_name", "family_name", "date_of_birth") if not data.get(k)}
        if missing:
            raise ValidationError(missing)


class BasisSchema(Strict):
    type = Text(max_length=40, required=True, validate=validate.OneOf(
        ["consent", "safeguarding", "statutory"]))
    given_by = Text(max_length=40, validate=validate.OneOf(CONSENT_GIVERS))
    given_on = fields.Date()
    reference = Text(max_length=200)
    covers_sensitive_services = fields.Boolean(load_default=False)
    justification = Text(max_length=4000, multiline=True)
    power = Text(max_length=100, validate=validate.OneOf(STATUTORY_POWERS))

    FIELDS: ClassVar[dict[str, tuple[str, ...]]] = {
        "consent": ("given_by", "given_on", "reference", "covers_sensitive_services"),
        "safeguarding": ("justification",),
        "statutory": ("power", "reference"),
    }
    REQUIRED: ClassVar[dict[str, tuple[str, ...]]] = {
        "consent": ("given_by", "given_on", "reference"),
        "safeguarding": ("justification",),
        "statutory": ("power", "reference"),
    }

    @validates_schema(pass_original=True)
    def fields_for_type(self, data: dict[str, Any], original: Any, **_: Any) -> None:
        kind = data.get("type", "")
        if kind not in self.FIELDS:
            return
        errors = {k: [f"Required for a {kind} basis."]
                  for k in self.REQUIRED[kind] if k not in data}
        given = original if isinstance(original, dict) else {}
        errors.update({k: [f"Not used for a {kind} basis."]
                       for k in given if k != "type" and k in self.fields
                       and k not in self.FIELDS[kind]})
        if errors:
            raise ValidationError(errors)

    @post_load
    def only_this_type(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        keep = ("type", *self.FIELDS.get(data["type"], ()))
        return {k: v for k, v in data.items() if k in keep}


class LookupRequestSchema(Strict):
    child = fields.Nested(ChildSchema, required=True)
    areas = fields.List(
        Text(max_length=64, validate=validate.Regexp(
            GSS_CODE, error="Not a GSS code, like E08000035.")),
        load_default=list, validate=validate.Length(max=20))
    scope = Text(max_length=20, load_default="targeted",
                 validate=validate.OneOf(["targeted", "all"]))
    #: Why every registered authority must be asked: required with ``scope: "all"``
    #: (a widening is a decision, kept in the trail), refused without it.
    scope_reason = Text(max_length=500, multiline=True, load_default=None,
                        validate=validate.Length(min=10), metadata={
                            "description": "Required with scope `all`: why every registered "
                                           "authority must be asked. Kept in the audit trail."})
    purpose = Text(max_length=500, multiline=True, required=True,
                   validate=validate.Length(min=10))
    basis = fields.Nested(BasisSchema, required=True)
    include_past = fields.Boolean(load_default=False)
    deadline_ms = fields.Integer(load_default=None, allow_none=True,
                                 validate=validate.Range(min=100))
    #: Optional: ask only these of the routed authorities (never widens routing);
    #: the results page's "add details and ask again" for a possible match.
    authorities = fields.List(Text(max_length=64, validate=validate.Length(min=1)),
                              load_default=None, validate=validate.Length(min=1, max=50))

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def free_text_holds_no_child(self, data: dict[str, Any], original: Any, **_: Any
                                 ) -> None:
        """Purpose, reasons and references against the request's own child (as sent:
        checked even when other fields failed, so every such field is named at once)."""
        if isinstance(original, dict):
            problems = lookup_text_problems(original)
            if problems:
                raise ValidationError(problems)

    @validates_schema
    def scope_reason_given(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("scope") == "all" and not (data.get("scope_reason") or "").strip():
            raise ValidationError({"scope_reason": [
                "Required with scope all: say why every registered authority must be "
                "asked, not only those covering the child's areas."]})
        if data.get("scope") != "all" and data.get("scope_reason") is not None:
            raise ValidationError({"scope_reason": ["Only used with scope all."]})


class AuthorityOutcomeSchema(Schema):
    id = fields.String()
    name = fields.String()
    outcome = fields.String(validate=validate.OneOf(OUTCOMES))
    latency_ms = fields.Integer()
    detail = fields.String(allow_none=True)
    confidence = fields.Float(metadata={"description": "How sure the authority is that "
                                        "its record is this child, 0 to 1 (when it says)"})
    matched_on = fields.List(fields.String(), metadata={
        "description": "The child's details that agreed (nhs_number, given_name, "
                       "family_name, date_of_birth, postcode)"})
    ask_for = fields.List(fields.String(), metadata={
        "description": "On a possible match: the details that would settle it"})
    partial = fields.List(fields.String(), metadata={
        "description": "Why this authority's answer is partial (page_cap, read_cap, "
                       "foreign_next_link, foreign_reference): it answered with what it "
                       "could read, and detail says what it could not"})


class ContactSchema(Schema):
    phone = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    sources = fields.List(fields.String(), metadata={
        "description": "The authorities that gave this phone and e-mail"})


class ProfessionalSchema(Schema):
    name = fields.String()
    role = fields.String()
    service = fields.String()
    organisation = fields.String()
    team = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    current = fields.Boolean()
    from_ = fields.String(data_key="from", attribute="from", allow_none=True)
    to = fields.String(allow_none=True)
    sources = fields.List(fields.String())
    contacts = fields.List(fields.Nested(ContactSchema), metadata={
        "description": "Every source's phone and e-mail, beside the sources that gave "
                       "them; the professional's own organisation first. `phone` and "
                       "`email` are the first of these. Where sources disagree, show each "
                       "with its sources: one authority's contact is never another's."})


class NoticeSchema(Schema):
    authority = fields.String(allow_none=True)
    text = fields.String()


class LookupResultSchema(Schema):
    lookup_id = fields.String()
    complete = fields.Boolean()
    authorities = fields.List(fields.Nested(AuthorityOutcomeSchema))
    professionals = fields.List(fields.Nested(ProfessionalSchema))
    notices = fields.List(fields.Nested(NoticeSchema))
