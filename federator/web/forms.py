"""The lookup form (Flask-WTF + govuk-frontend-wtf) and the pure mapping
between its fields and the JSON API's payload and error shapes.

The form checks only what a browser can get wrong in its own way (a date
that is not a date); every rule about a lookup lives in the API's schema and
the consent policy, whose messages are placed back on the form's fields.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flask import abort
from flask_wtf import FlaskForm
from govuk_frontend_wtf.wtforms_widgets import (
    GovCheckboxInput,
    GovDateInput,
    GovRadioInput,
    GovSelect,
    GovSubmitInput,
    GovTextArea,
    GovTextInput,
)
from wtforms import (
    BooleanField,
    DateField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import Optional

from federator.inputs import UsableText
from federator.lookup.consent import CONSENT_GIVERS, STATUTORY_POWERS

BASIS_TYPES = (
    ("consent", "Consent"),
    ("safeguarding", "Safeguarding: sharing without consent"),
    ("statutory", "A statutory power or court order"),
)
POWER_NAMES = {
    "children-act-1989-s47": "Children Act 1989, section 47 (enquiry)",
    "children-act-1989-s17": "Children Act 1989, section 17 (child in need)",
    "court-order": "A court order",
}
GIVER_NAMES = {"child": "The child", "parent": "A parent", "guardian": "A guardian"}
DATE_FORMAT = "%d %m %Y"
DATE_MESSAGE = "{} must be a real date, like 27 3 2015."


class ChildIdentityForm(FlaskForm):
    """Who the child is: the same fields on the lookup, check-child and
    subject-access pages."""

    nhs_number = StringField(
        "NHS number", widget=GovTextInput(), validators=[UsableText(30)],
        description="10 digits, for example 943 476 5919. Leave blank if you do not know it.")
    given_name = StringField("First name", widget=GovTextInput(), validators=[UsableText(100)])
    family_name = StringField("Last name", widget=GovTextInput(), validators=[UsableText(100)])
    date_of_birth = DateField("Date of birth", format=DATE_FORMAT, widget=GovDateInput(),
                              validators=[Optional()], description="For example, 27 3 2015")


class LookupForm(ChildIdentityForm):
    postcode = StringField("Current postcode", widget=GovTextInput(),
                           validators=[UsableText(20)],
                           description="Used to find the local authorities to ask.")
    previous_postcodes = TextAreaField(
        "Previous postcodes (optional)", widget=GovTextArea(),
        validators=[UsableText(200, multiline=True)],
        description="One on each line. Authorities covering these areas are asked too.")
    also_ask = SelectField(
        "Another authority to ask (optional)",
        choices=[SelectChoice("", "Choose an authority")], widget=GovSelect(),
        validate_choice=False,
        description="Where the child may be known other than their postcodes' areas. "
                    "Start typing its name.")
    areas = StringField(
        "Other areas by code (optional)", widget=GovTextInput(),
        validators=[UsableText(300)],
        description="GSS codes separated by spaces or commas, for example E08000035.")
    purpose = TextAreaField(
        "Why are you asking?", widget=GovTextArea(),
        validators=[UsableText(500, multiline=True, free_text=True)],
        description="This is recorded in the audit trail and may be shown to the family.")
    basis_type = RadioField("Lawful basis for this lookup",
                            choices=[SelectChoice(v, t) for v, t in BASIS_TYPES],
                            widget=GovRadioInput(), validate_choice=False)
    given_by = RadioField("Who gave consent?",
                          choices=[SelectChoice(g, GIVER_NAMES[g]) for g in CONSENT_GIVERS],
                          widget=GovRadioInput(), validate_choice=False)
    given_on = DateField("When was consent given?", format=DATE_FORMAT, widget=GovDateInput(),
                         validators=[Optional()], description="For example, 20 11 2026")
    consent_reference = StringField("Where is the consent recorded?", widget=GovTextInput(),
                                    validators=[UsableText(200, free_text=True)],
                                    description="A case or document reference.")
    covers_sensitive_services = BooleanField(
        "The consent covers sensitive services (sexual health, substance misuse, "
        "mental health)", widget=GovCheckboxInput())
    justification = TextAreaField(
        "Why must this be shared without consent?", widget=GovTextArea(),
        validators=[UsableText(4000, multiline=True, free_text=True)],
        description="At least 40 characters. Safeguarding lookups are always reviewed.")
    power = SelectField("Which power?",
                        choices=[SelectChoice("", "Choose a power"),
                                 *(SelectChoice(p, POWER_NAMES[p]) for p in STATUTORY_POWERS)],
                        widget=GovSelect(), validate_choice=False)
    statutory_reference = StringField("Reference", widget=GovTextInput(),
                                      validators=[UsableText(200, free_text=True)],
                                      description="The case or order number.")
    include_past = BooleanField("Include past involvement", widget=GovCheckboxInput(),
                                default=True)
    submit = SubmitField("Find who is involved", widget=GovSubmitInput())


# --------------------------------------------------------------------------
# Pure mapping (no Flask): form data -> API payload, API errors -> form fields
# --------------------------------------------------------------------------


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    return value.strip() if isinstance(value, str) else ""


def _codes(text: str) -> list[str]:
    return [c for c in re.split(r"[\s,;]+", text.upper()) if c]


def payload_from_form(data: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON API's request body from the form's values (dates as ISO text)."""
    def iso(key: str) -> str | None:
        value = data.get(key)
        return value.isoformat() if hasattr(value, "isoformat") else None

    postcodes = [p for p in [_text(data, "postcode"),
                             *_text(data, "previous_postcodes").splitlines()] if p.strip()]
    child = {
        "nhs_number": _text(data, "nhs_number") or None,
        "given_name": _text(data, "given_name") or None,
        "family_name": _text(data, "family_name") or None,
        "date_of_birth": iso("date_of_birth"),
        "postcodes": [p.strip() for p in postcodes],
    }
    kind = _text(data, "basis_type")
    basis: dict[str, Any] = {"type": kind}
    if kind == "consent":
        basis.update(given_by=_text(data, "given_by"), given_on=iso("given_on"),
                     reference=_text(data, "consent_reference"),
                     covers_sensitive_services=bool(data.get("covers_sensitive_services")))
    elif kind == "safeguarding":
        basis["justification"] = _text(data, "justification")
    elif kind == "statutory":
        basis.update(power=_text(data, "power"), reference=_text(data, "statutory_reference"))
    # an empty answer is "missing" to the schema, which then names the field
    basis = {k: v for k, v in basis.items() if v not in ("", None)}
    return {
        "child": child,
        "areas": _codes(_text(data, "areas")),
        "purpose": _text(data, "purpose"),
        "basis": basis,
        "include_past": bool(data.get("include_past")),
    }


BASIS_FIELDS = {"type": "basis_type", "given_by": "given_by", "given_on": "given_on",
                "covers_sensitive_services": "covers_sensitive_services",
                "justification": "justification", "power": "power"}
FIELD_LABELS = {"basis_type": "Choose the lawful basis for this lookup"}


def form_errors(errors: Mapping[str, Any], basis_type: str) -> dict[str, list[str]]:
    """Place the API's errors (schema or consent policy) on the form's fields.

    Messages for anything the form does not show go under ``"form"``.
    """
    placed: dict[str, list[str]] = {}

    def put(field: str, messages: Any) -> None:
        placed.setdefault(field, []).extend(_flatten(messages))

    for key, value in errors.items():
        if key == "child" and isinstance(value, Mapping):
            for name, messages in value.items():
                if name == "postcodes" and isinstance(messages, Mapping):
                    for index, text in messages.items():
                        put("postcode" if str(index) == "0" else "previous_postcodes", text)
                elif name in ("nhs_number", "given_name", "family_name", "date_of_birth"):
                    put(name, messages)
                else:
                    put("postcode" if name == "postcodes" else "form", messages)
        elif key == "basis" and isinstance(value, Mapping):
            for name, messages in value.items():
                if name == "reference":
                    put("statutory_reference" if basis_type == "statutory"
                        else "consent_reference", messages)
                else:
                    put(BASIS_FIELDS.get(name, "form"), messages)
        elif key == "basis":
            put("basis_type", value)
        elif key in ("purpose", "areas", "include_past"):
            put(key, value)
        else:
            put("form", value)
    if "basis_type" in placed and not basis_type:
        placed["basis_type"] = [FIELD_LABELS["basis_type"]]
    return placed


def _flatten(messages: Any) -> list[str]:
    if isinstance(messages, str):
        return [messages]
    if isinstance(messages, Mapping):
        return [m for value in messages.values() for m in _flatten(value)]
    if isinstance(messages, list | tuple):
        return [m for value in messages for m in _flatten(value)]
    return [str(messages)]


#: Where the error summary links to, for fields whose first input is not ``#<name>``.
FIRST_INPUT = {"date_of_birth": "date_of_birth-day", "given_on": "given_on-day"}


def error_summary(form: FlaskForm, order: list[str]) -> list[dict[str, str]]:
    """The GOV.UK error summary's list, in the order the fields appear."""
    items = []
    for name in order:
        field = getattr(form, name, None)
        if field is not None and field.errors:
            items.append({"text": field.errors[0], "href": f"#{FIRST_INPUT.get(name, name)}"})
    return items


def csrf_refused(form: Any) -> None:
    """Validate a posted form (its field errors are read afterwards); a missing or
    wrong CSRF token is a plain 400, never a form error."""
    form.validate()
    if "csrf_token" in form.errors:
        abort(400)
