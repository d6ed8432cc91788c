"""Error messages the GOV.UK way, per field, for the lookup form.

The API's messages name the rule ("Shorter than minimum length 10.",
"Required for a consent basis.", "Give this, or the child's NHS number."); the
form says, for each field, what to do about it ("Enter why you are looking up
this child, in at least 10 characters"), so a summary never shows the same
words three times. Messages not known here are kept as they are.

Pure: no Flask."""

from __future__ import annotations

import re
from collections.abc import Iterable

#: what to enter in each field, as "Enter …" / "Select …" completes it
WHAT = {
    "nhs_number": "Enter the child's NHS number",
    "given_name": "Enter the child's first name",
    "family_name": "Enter the child's last name",
    "date_of_birth": "Enter the child's date of birth",
    "postcode": "Enter the child's current postcode",
    "previous_postcodes": "Enter the child's previous postcodes",
    "areas": "Enter the other authority areas",
    "purpose": "Enter why you are looking up this child",
    "given_by": "Select who gave consent",
    "given_on": "Enter the date consent was given",
    "consent_reference": "Enter where the consent is recorded",
    "justification": "Enter why asking for consent would put the child at risk",
    "power": "Select the power the lookup is made under",
    "statutory_reference": "Enter the reference for the statutory power",
}
NAMES = {
    "nhs_number": "NHS number", "given_name": "First name", "family_name": "Last name",
    "purpose": "Purpose", "consent_reference": "Where the consent is recorded",
    "justification": "Justification", "statutory_reference": "Reference",
    "previous_postcodes": "Previous postcodes", "postcode": "Postcode", "areas": "Areas",
}
SHORTER = re.compile(r"Shorter than minimum length (\d+)\.?")
LONGER = re.compile(r"Longer than maximum length (\d+)\.?")
REQUIRED = re.compile(r"(Required for an? \w+ basis\.?|Missing data for required field\.?"
                      r"|Field may not be null\.?)")
OR_NHS = "Give this, or the child's NHS number."


def govuk_message(field: str, message: str) -> str:
    """One API message for one form field, in the form's words."""
    if message == OR_NHS and field in WHAT:
        return f"{WHAT[field]}, or their NHS number"
    if REQUIRED.fullmatch(message) and field in WHAT:
        return WHAT[field]
    name = NAMES.get(field, "This")
    if found := SHORTER.fullmatch(message):
        if field == "purpose":
            return f"{WHAT['purpose']}, in at least {found.group(1)} characters"
        return f"{name} must be {found.group(1)} characters or more"
    if found := LONGER.fullmatch(message):
        return f"{name} must be {found.group(1)} characters or fewer"
    if message == "An NHS number is 10 digits.":
        return "NHS number must be 10 digits, like 943 476 5919"
    return message.removesuffix(".")  # GOV.UK error messages end without a full stop


def govuk_messages(field: str, messages: Iterable[str]) -> list[str]:
    """A field's messages in the form's words, each once, in order."""
    return list(dict.fromkeys(govuk_message(field, m) for m in messages))
