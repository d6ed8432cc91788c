"""The auditor's forms (Flask-WTF + govuk-frontend-wtf) and the pure mapping
between them and the audit API's bodies and queries.

The forms check only what a browser gets wrong in its own way (a date that is
not a date); the rules are the API's schemas (``ChildSchema``, ``RecordQuery``),
whose messages are placed back on the fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from govuk_frontend_wtf.wtforms_widgets import (
    GovSubmitInput,
    GovTextArea,
    GovTextInput,
)
from wtforms import StringField, SubmitField, TextAreaField

from federator.inputs import UsableText, form_text_errors
from federator.names import LOOKUP_COMPLETED, LOOKUP_REFUSED, LOOKUP_REQUESTED
from federator.web.forms import DATE_MESSAGE, ChildIdentityForm, _flatten, csrf_refused

CHILD_FIELDS = ("nhs_number", "given_name", "family_name", "date_of_birth")


class CheckChildForm(ChildIdentityForm):
    reason = TextAreaField("Why are you checking? (optional)", widget=GovTextArea(),
                           validators=[UsableText(500, multiline=True, free_text=True)],
                           description="Recorded in the audit trail with your check.")
    submit = SubmitField("Check the trail", widget=GovSubmitInput())


class SubjectAccessForm(ChildIdentityForm):
    request_reference = StringField(
        "Subject access request reference", widget=GovTextInput(),
        validators=[UsableText(100, free_text=True)],
        description="For example, SAR-2026-0142. Recorded in the audit trail.")
    submit = SubmitField("Find every lookup about this child", widget=GovSubmitInput())


def read_posted(form: ChildIdentityForm) -> None:
    """A posted identity form, validated (CSRF refused with 400); a post without
    the three date inputs (not from our page) has no date."""
    csrf_refused(form)
    raw = form.date_of_birth.raw_data
    if raw is not None and len(raw) != 3:
        form.date_of_birth.raw_data = None


def show_errors(form: ChildIdentityForm, errors: Mapping[str, Any], fields: tuple[str, ...]
                ) -> dict[str, list[str]]:
    """The schema's errors, the text rule's and the date's, put on the form's
    fields (each message once); returned by field name (``"form"`` for the rest)."""
    placed = {**place_errors(errors, fields), **form_text_errors(form)}
    if form.date_of_birth.errors:
        placed["date_of_birth"] = [DATE_MESSAGE.format("Date of birth")]
    for name, messages in placed.items():
        if name in form:
            form[name].errors = list(dict.fromkeys(messages))
    return placed


def child_from_form(data: Mapping[str, Any]) -> dict[str, Any]:
    """The API's ``child`` from the form's values (the date as ISO text)."""
    def text(key: str) -> str | None:
        value = data.get(key)
        return value.strip() or None if isinstance(value, str) else None

    dob = data.get("date_of_birth")
    return {"nhs_number": text("nhs_number"), "given_name": text("given_name"),
            "family_name": text("family_name"),
            "date_of_birth": dob.isoformat() if hasattr(dob, "isoformat") else None}


def place_errors(errors: Mapping[str, Any], fields: tuple[str, ...]) -> dict[str, list[str]]:
    """The schema's ``{"child": {...}, "reason": [...]}`` on the form's field names;
    anything else under ``"form"``."""
    placed: dict[str, list[str]] = {}
    for key, value in errors.items():
        if key == "child" and isinstance(value, Mapping):
            for name, messages in value.items():
                target = name if name in CHILD_FIELDS else "form"
                placed.setdefault(target, []).extend(_flatten(messages))
        else:
            placed.setdefault(key if key in fields else "form", []).extend(_flatten(value))
    return placed


#: The record list's filters: the API's query parameters, as the page's own.
FILTERS = ("from", "to", "actor", "organisation", "authority", "basis", "event", "flagged",
           "flag", "sort", "cursor")
EVENT_CHOICES = (("lookup.*", "Lookups (requested, completed, refused)"),
                 (LOOKUP_REQUESTED, "Lookups requested"),
                 (LOOKUP_COMPLETED, "Lookups completed"),
                 (LOOKUP_REFUSED, "Lookups refused"),
                 ("registry.*", "Registry changes"), ("auth.*", "Sign-ins and sign-outs"),
                 ("audit.*", "Auditors' actions"), ("", "Every event"))
DEFAULT_EVENT = "lookup.*"


def record_query(args: Mapping[str, str], limit: int = 25) -> dict[str, Any]:
    """The API's ``RecordQuery`` input from the page's query string: blanks
    dropped, the default event applied, ``flagged`` only when ticked."""
    query = {k: args[k].strip() for k in FILTERS if isinstance(args.get(k), str)
             and args[k].strip()}
    if "event" not in args:
        query["event"] = DEFAULT_EVENT
    if query.get("flagged") not in (None, "true"):
        query["flagged"] = "true"
    query["limit"] = str(limit)
    return query


def filter_values(args: Mapping[str, str]) -> dict[str, str]:
    """What the filter form shows (the event default when none was chosen)."""
    values = {k: (args.get(k) or "").strip() for k in FILTERS}
    if "event" not in args:
        values["event"] = DEFAULT_EVENT
    return values
