"""The form's error messages, the GOV.UK way: per field, what to do, no full stop."""

from __future__ import annotations

import pytest

from federator.web.wording import govuk_message, govuk_messages


@pytest.mark.parametrize(("field", "api", "form"), [
    ("given_name", "Give this, or the child's NHS number.",
     "Enter the child's first name, or their NHS number"),
    ("date_of_birth", "Give this, or the child's NHS number.",
     "Enter the child's date of birth, or their NHS number"),
    ("purpose", "Shorter than minimum length 10.",
     "Enter why you are looking up this child, in at least 10 characters"),
    ("consent_reference", "Longer than maximum length 200.",
     "Where the consent is recorded must be 200 characters or fewer"),
    ("given_by", "Required for a consent basis.", "Select who gave consent"),
    ("justification", "Required for a safeguarding basis.",
     "Enter why asking for consent would put the child at risk"),
    ("statutory_reference", "Required for a statutory basis.",
     "Enter the reference for the statutory power"),
    ("nhs_number", "An NHS number is 10 digits.",
     "NHS number must be 10 digits, like 943 476 5919"),
    ("postcode", "Enter a full UK postcode, like LS6 2AB.",
     "Enter a full UK postcode, like LS6 2AB"),
    ("unknown_field", "Required for a consent basis.", "Required for a consent basis"),
])
def test_each_api_message_in_the_fields_words(field, api, form) -> None:
    assert govuk_message(field, api) == form


def test_a_fields_messages_are_said_once() -> None:
    assert govuk_messages("purpose", ["Shorter than minimum length 10.",
                                      "Shorter than minimum length 10."]) == [
        "Enter why you are looking up this child, in at least 10 characters"]
