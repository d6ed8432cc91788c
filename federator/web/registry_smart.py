"""SMART Backend Services on the registry pages: how a ``fhir-r4`` endpoint's
credentials typed on the form are merged onto the stored ones (a field left
blank keeps what is stored, so a saved form never drops a private key it does
not show), the "Create a key pair" form, and what the endpoint's page shows of
its key: the public JWKS only, never the private key.

The key itself is made and read by :mod:`adapters.smart_auth` (the same
functions as ``federator registry smart-key``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from flask_wtf import FlaskForm
from govuk_frontend_wtf.wtforms_widgets import GovRadioInput, GovSubmitInput
from wtforms import RadioField, SelectChoice, SubmitField

from adapters.smart_auth import (
    AUTH_METHODS,
    CLIENT_SECRET,
    SMART_BACKEND,
    SmartKeyError,
    auth_method,
    credentials_jwks,
    generate_private_key,
)
from federator.registry.secrets import CredentialsKeyError

FHIR = "fhir-r4"
AUTH_CHOICES = [
    (CLIENT_SECRET, "A client secret (OAuth2 client credentials)"),
    (SMART_BACKEND, "SMART Backend Services: a key pair the broker makes (no shared secret)"),
]
KEY_CHOICES = [
    ("ES384", "Elliptic curve P-384, signs ES384 (recommended)"),
    ("RS384", "RSA 3072 bits, signs RS384 (for servers that take only RSA keys)"),
]


OVERLAP, AT_ONCE = "overlap", "now"


class KeyPairForm(FlaskForm):
    alg = RadioField("Kind of key", widget=GovRadioInput(),
                     choices=[SelectChoice(v, t) for v, t in KEY_CHOICES],
                     default="ES384", validate_choice=False,
                     description="SMART requires every FHIR server to accept both.")
    when = RadioField("When the new key signs", widget=GovRadioInput(), default=OVERLAP,
                      validate_choice=False)  # choices: see when_choices
    submit = SubmitField("Create a key pair", widget=GovSubmitInput())


def when_choices(overlap_s: int) -> list[SelectChoice]:
    return [SelectChoice(OVERLAP, f"After {duration_text(overlap_s)}: the key in use signs "
                                  "until then, both are published, and the endpoint keeps "
                                  "its status while you register the new one"),
            SelectChoice(AT_ONCE, "At once: the key in use is deleted, and the endpoint "
                                  "needs approval again")]


def duration_text(seconds: int) -> str:
    """``604800`` -> ``"7 days"``; ``5400`` -> ``"90 minutes"``."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


# --------------------------------------------------------------------------
# Pure
# --------------------------------------------------------------------------


def method_of(credentials: Mapping[str, str]) -> str:
    """The stored credentials' ``auth`` (an unknown one reads as a client secret)."""
    try:
        return auth_method(credentials)
    except ValueError:
        return CLIENT_SECRET


def merge_credentials(stored: Mapping[str, str], typed: Mapping[str, str], auth: str | None,
                      *, make_key: Callable[[], str] = generate_private_key) -> dict[str, str]:
    """A ``fhir-r4`` endpoint's credentials after its form is saved: the stored
    ones with each typed field replacing only itself, ``auth`` set when the
    chosen method is not the stored one, and a new private key (``make_key``)
    when SMART Backend Services is chosen and none is stored. Nothing stored is
    dropped: a client secret and a private key both stay until replaced."""
    merged = {**stored, **typed}
    if auth in AUTH_METHODS and method_of(merged) != auth:
        merged["auth"] = str(auth)
    if method_of(merged) == SMART_BACKEND and not merged.get("private_key"):
        merged["private_key"] = make_key()
    return merged


def with_form_credentials(update: Mapping[str, Any], current_protocol: str | None,
                          stored: Mapping[str, str], auth: str | None, *,
                          make_key: Callable[[], str] = generate_private_key
                          ) -> dict[str, Any]:
    """The registry update (or registration) for a saved form: for an endpoint
    that is ``fhir-r4`` before and after, ``credentials`` are the merged ones,
    and left out when they equal the stored ones (so an unchanged form does not
    send the endpoint back for approval). Other protocols: as typed."""
    protocol = update.get("protocol", current_protocol)
    if protocol != FHIR:
        return dict(update)
    base = stored if current_protocol in (FHIR, None) else {}
    merged = merge_credentials(base, update.get("credentials") or {}, auth,
                               make_key=make_key)
    out = {k: v for k, v in update.items() if k != "credentials"}
    if merged != dict(base):
        out["credentials"] = merged
    return out


def jwks_text(credentials: Mapping[str, str], now: float) -> str | None:
    """The public JWKS of the stored keys as the page shows it (``None`` without one)."""
    jwks = credentials_jwks(credentials, now)
    return json.dumps(jwks, indent=2) if jwks else None


def utc_text(epoch: str) -> str:
    """``"1767225600"`` -> ``"1 January 2026 at 00:00 UTC"``."""
    when = datetime.fromtimestamp(float(epoch), UTC)
    return f"{when.day} {when:%B %Y at %H:%M} UTC"


# --------------------------------------------------------------------------
# For the views
# --------------------------------------------------------------------------


def stored_credentials(registry: Any, shown: Mapping[str, Any]) -> dict[str, str]:
    """The endpoint's decrypted credentials; ``CredentialsKeyError`` when unreadable."""
    return registry.credentials(shown["id"]) if shown.get("credentials_stored") else {}


def key_panel(registry: Any, shown: Mapping[str, Any]) -> dict[str, Any] | None:
    """What the endpoint's page shows of a FHIR endpoint's sign-in: its method,
    and for SMART its public JWKS (or why it cannot be shown)."""
    if shown["protocol"] != FHIR:
        return None
    try:
        credentials = stored_credentials(registry, shown)
    except CredentialsKeyError:
        return {"method": None, "jwks": None, "client_id": False,
                "problem": "The stored credentials cannot be read with this broker's "
                           "FEDERATOR_CREDENTIALS_KEY."}
    panel: dict[str, Any] = {"method": method_of(credentials) if credentials else None,
                             "jwks": None, "client_id": bool(credentials.get("client_id")),
                             "problem": None, "next_from": None}
    try:
        panel["jwks"] = jwks_text(credentials, time.time())
        if credentials.get("next_private_key") and credentials.get("next_from"):
            panel["next_from"] = utc_text(credentials["next_from"])
    except (SmartKeyError, ValueError, OverflowError) as e:
        panel["problem"] = f"The stored private key cannot be used: {e}."
    return panel
