"""Consent policy: is the stated basis good enough to ask? Pure functions."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

CONSENT_GIVERS = ("child", "parent", "guardian")
STATUTORY_POWERS = ("children-act-1989-s47", "children-act-1989-s17", "court-order")
MIN_JUSTIFICATION = 40

FieldErrors = dict[str, list[str]]


def check_basis(basis: Mapping[str, Any], *, today: date, consent_max_age_days: int) -> FieldErrors:
    """Errors by field name within ``basis``; empty when the basis holds."""
    kind = basis.get("type")
    if kind == "consent":
        return _consent(basis, today, consent_max_age_days)
    if kind == "safeguarding":
        text = str(basis.get("justification") or "").strip()
        if len(text) < MIN_JUSTIFICATION:
            return {"justification": [
                f"Explain why asking for consent would put the child at risk, "
                f"in at least {MIN_JUSTIFICATION} characters."]}
        return {}
    if kind == "statutory":
        errors: FieldErrors = {}
        if basis.get("power") not in STATUTORY_POWERS:
            errors["power"] = [f"Must be one of: {', '.join(STATUTORY_POWERS)}."]
        if not str(basis.get("reference") or "").strip():
            errors["reference"] = ["Give the reference of the case or order."]
        return errors
    return {"type": ["Must be one of: consent, safeguarding, statutory."]}


def _consent(basis: Mapping[str, Any], today: date, max_age_days: int) -> FieldErrors:
    errors: FieldErrors = {}
    if basis.get("given_by") not in CONSENT_GIVERS:
        errors["given_by"] = [f"Must be one of: {', '.join(CONSENT_GIVERS)}."]
    given_on = basis.get("given_on")
    if not isinstance(given_on, date):
        errors["given_on"] = ["Give the date consent was given."]
    elif given_on > today:
        errors["given_on"] = ["The date consent was given must not be in the future."]
    elif given_on < today - timedelta(days=max_age_days):
        errors["given_on"] = [
            f"Consent older than {max_age_days} days must be asked for again."]
    if not str(basis.get("reference") or "").strip():
        errors["reference"] = ["Say where the consent is recorded."]
    return errors
