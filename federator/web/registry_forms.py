"""The endpoint forms of the registry pages (Flask-WTF + govuk-frontend-wtf) and
the pure mapping between their fields and the registry API's payload and
error shapes.

The forms check nothing themselves: every rule is the registry's
(``EndpointSchema``, ``safety_errors``, ``federator.registry.rules``), whose
messages are placed back on the fields here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from flask_wtf import FlaskForm
from govuk_frontend_wtf.wtforms_widgets import (
    GovPasswordInput,
    GovRadioInput,
    GovSubmitInput,
    GovTextArea,
    GovTextInput,
)
from wtforms import (
    HiddenField,
    PasswordField,
    RadioField,
    SelectChoice,
    StringField,
    SubmitField,
    TextAreaField,
)

from federator.inputs import UsableText
from federator.web.registry_smart import AUTH_CHOICES

#: The form's fields for each credential the protocols use.
CREDENTIAL_FIELDS = {"token_url": "token_url", "client_id": "client_id",
                     "client_secret": "client_secret", "scope": "scope"}
#: Where the registry's errors about each credential go on the form.
CREDENTIAL_ERROR_FIELDS = {**CREDENTIAL_FIELDS, "auth": "auth"}
#: The order of the fields on the page (the error summary follows it).
FIELD_ORDER = ["name", "code", "coverage", "protocol", "url", "timeout_ms", "contact",
               "auth", "token_url", "client_id", "client_secret", "scope",
               "include_default", "sensitive_codes", "restricted_labels", "restricted_route"]
#: The FHIR endpoint's policy on the form (federator/registry/policy.py).
POLICY_FIELDS = ("include_default", "sensitive_codes", "restricted_labels", "restricted_route")
DEFAULT_CHOICES = [("yes", "Yes: the default sensitive services (docs/fhir.md), and any "
                           "codes given below"),
                   ("no", "No: only the codes given below")]
PROTOCOL_NAMES = {
    "federator-lookup/1": "federator-lookup/1 (the adapter kit, or any server of the protocol)",
    "fhir-r4": "FHIR R4 (OAuth2 client credentials or SMART Backend Services)",
}


class EndpointForm(FlaskForm):
    name = StringField("Name", widget=GovTextInput(), validators=[UsableText(200)],
                       description="As practitioners will see it, for example "
                                   "Leeds Children's Social Care.")
    code = StringField("GSS or ODS code", widget=GovTextInput(), validators=[UsableText(50)],
                       description="For example E08000035 (a council) or RXF (an NHS trust).")
    coverage = TextAreaField(
        "Areas covered", widget=GovTextArea(), validators=[UsableText(5000, multiline=True)],
        description="GSS codes of the local authority areas it knows children in, "
                    "separated by spaces or commas; or the word national.")
    protocol = RadioField("How the broker asks it", widget=GovRadioInput(),
                          validate_choice=False,
                          description="The protocol your adapter speaks.")
    url = StringField("Address (URL)", widget=GovTextInput(), validators=[UsableText(500)],
                      description="Where the broker sends lookups, starting https://.")
    timeout_ms = StringField("Time limit in milliseconds", widget=GovTextInput(),
                             validators=[UsableText(20)],
                             description="How long a lookup may wait for its answer: "
                                         "100 to 60000.", default="3000")
    contact = TextAreaField("Technical contact", widget=GovTextArea(),
                            validators=[UsableText(500, multiline=True, free_text=True)],
                            description="Who to tell when the endpoint fails.")
    auth = RadioField("How the broker signs in to it", widget=GovRadioInput(),
                      choices=[SelectChoice(v, t) for v, t in AUTH_CHOICES],
                      validate_choice=False)  # none chosen: as stored
    token_url = StringField("Token URL", widget=GovTextInput(), validators=[UsableText(2000)],
                            description="With SMART Backend Services it may be left blank: "
                                        "the broker reads it from your server's "
                                        ".well-known/smart-configuration.")
    client_id = StringField("Client ID", widget=GovTextInput(), validators=[UsableText(2000)])
    client_secret = PasswordField("Client secret", widget=GovPasswordInput(),
                                  validators=[UsableText(2000)],
                                  description="Only with a client secret. Stored encrypted; "
                                              "never shown again.")
    scope = StringField("Scope (optional)", widget=GovTextInput(), validators=[UsableText(2000)])
    include_default = RadioField("Hold back the default sensitive services?",
                                 widget=GovRadioInput(), validate_choice=False,
                                 choices=[SelectChoice(v, t) for v, t in DEFAULT_CHOICES],
                                 default="yes")
    sensitive_codes = TextAreaField(
        "Sensitive service codes (optional)", widget=GovTextArea(),
        validators=[UsableText(62000, multiline=True)],
        description="One a line: a SNOMED CT concept id, or system|code. Services with these "
                    "codes are shared only when the lookup's basis covers sensitive services.")
    restricted_labels = TextAreaField(
        "Restricted record labels (optional)", widget=GovTextArea(),
        validators=[UsableText(16000, multiline=True)],
        description="One a line, system|code of a Patient.meta.security label that restricts "
                    "a record, besides HL7 v3 Confidentiality R and V (always).")
    restricted_route = TextAreaField(
        "Who to contact about a restricted record (optional)", widget=GovTextArea(),
        validators=[UsableText(500, multiline=True)],
        description="Practitioners are told to contact this about a restricted record, "
                    "for example: the safeguarding team on 01632 960000.")
    submit = SubmitField("Save", widget=GovSubmitInput())


class ReviewForm(FlaskForm):
    reason = TextAreaField("Reason", widget=GovTextArea(),
                           validators=[UsableText(2000, multiline=True, free_text=True)])
    #: the endpoint's version the page showed: approving refuses if it changed since
    seen = HiddenField(validators=[UsableText(64)])
    submit = SubmitField("Confirm", widget=GovSubmitInput())


def protocol_choices(installed: Iterable[str]) -> list[tuple[str, str]]:
    return [(p, PROTOCOL_NAMES.get(p, p)) for p in installed]


# --------------------------------------------------------------------------
# Pure mapping (no Flask)
# --------------------------------------------------------------------------


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    return value.strip() if isinstance(value, str) else ""


def coverage_codes(text: str) -> list[str]:
    """``"E08000035, E08000034"`` → ``["E08000035", "E08000034"]``; ``national`` kept."""
    codes = [c for c in re.split(r"[\s,;]+", text.strip()) if c]
    return ["national" if c.lower() == "national" else c.upper() for c in codes]


def payload_from_form(data: Mapping[str, Any]) -> dict[str, Any]:
    """The registry API's body from the form's values. An empty value is left
    out, so the schema names the field as missing; credentials only when some
    were typed (leaving them blank on a change keeps the stored ones)."""
    timeout = _text(data, "timeout_ms")
    payload: dict[str, Any] = {
        "name": _text(data, "name"), "code": _text(data, "code").upper(),
        "coverage": coverage_codes(_text(data, "coverage")),
        "protocol": _text(data, "protocol"), "url": _text(data, "url"),
        "timeout_ms": int(timeout) if timeout.isascii() and timeout.isdigit() else timeout,
        "contact": _text(data, "contact"),
    }
    payload = {k: v for k, v in payload.items() if v not in ("", None)}
    credentials = {name: _text(data, field) for name, field in CREDENTIAL_FIELDS.items()
                   if _text(data, field)}
    if credentials:
        payload["credentials"] = credentials
    if payload.get("protocol") == "fhir-r4":
        payload["policy"] = policy_from_form(data)
    return payload


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def policy_from_form(data: Mapping[str, Any]) -> dict[str, Any]:
    """The policy fields as the registry's ``policy`` (an empty one: the defaults)."""
    return {"include_default": _text(data, "include_default") != "no",
            "sensitive_codes": _lines(_text(data, "sensitive_codes")),
            "restricted_labels": _lines(_text(data, "restricted_labels")),
            "restricted_route": _text(data, "restricted_route")}


def form_values(endpoint: Mapping[str, Any]) -> dict[str, Any]:
    """A stored endpoint (as the registry describes it) as the change form's values
    (credentials are never shown)."""
    return {"name": endpoint["name"], "code": endpoint["code"],
            "coverage": " ".join(endpoint["coverage"]), "protocol": endpoint["protocol"],
            "url": endpoint["url"], "timeout_ms": str(endpoint["timeout_ms"]),
            "contact": endpoint["contact"], **policy_values(endpoint.get("policy"))}


def policy_values(policy: Mapping[str, Any] | None) -> dict[str, str]:
    policy = policy or {}
    return {"include_default": "no" if policy.get("include_default") is False else "yes",
            "sensitive_codes": "\n".join(policy.get("sensitive_codes") or ()),
            "restricted_labels": "\n".join(policy.get("restricted_labels") or ()),
            "restricted_route": str(policy.get("restricted_route") or "")}


def place_errors(errors: Mapping[str, Any]) -> dict[str, list[str]]:
    """The registry's errors (schema and safety) on the form's fields; anything
    the form does not show goes under ``"form"``."""
    placed: dict[str, list[str]] = {}

    def put(field: str, messages: Any) -> None:
        placed.setdefault(field, []).extend(_flatten(messages))

    for key, value in errors.items():
        if key == "policy" and isinstance(value, Mapping):
            for name, messages in value.items():
                put(str(name) if str(name) in POLICY_FIELDS else "form", messages)
        elif key == "policy":
            put("restricted_route", value)  # e.g. a protocol that takes no policy
        elif key == "credentials" and isinstance(value, Mapping):
            for name, messages in value.items():
                put(CREDENTIAL_ERROR_FIELDS.get(str(name), "form"), messages)
        elif key == "credentials":
            put("token_url", value)  # e.g. a protocol that takes no credentials
        elif key in FIELD_ORDER:
            put(key, value)
        else:
            put("form", value)
    return {k: list(dict.fromkeys(v)) for k, v in placed.items()}


def _flatten(messages: Any) -> list[str]:
    if isinstance(messages, str):
        return [messages]
    if isinstance(messages, Mapping):
        return [m for value in messages.values() for m in _flatten(value)]
    if isinstance(messages, list | tuple):
        return [m for value in messages for m in _flatten(value)]
    return [str(messages)]


#: Clearer words for the schema's generic messages, by field.
MISSING = {
    "name": "Enter the endpoint's name",
    "code": "Enter a GSS or ODS code",
    "coverage": "Enter the areas it covers, or national",
    "protocol": "Choose how the broker asks it",
    "url": "Enter the endpoint's address",
    "token_url": "Enter the token URL",
    "client_id": "Enter the client ID",
    "client_secret": "Enter the client secret",
    "auth": "Choose how the broker signs in to it",
}


def friendly(placed: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """``Missing data for required field.`` said the GOV.UK way for each field."""
    out: dict[str, list[str]] = {}
    for field, messages in placed.items():
        out[field] = [MISSING.get(field, m) if m == "Missing data for required field."
                      else ("The time limit must be a whole number of milliseconds"
                            if field == "timeout_ms" and m == "Not a valid integer." else m)
                      for m in messages]
    return out
