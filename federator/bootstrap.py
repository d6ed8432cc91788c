"""Fresh secrets for a new broker (``federator keys secrets``): pure functions.

Each value passes the production checks of :mod:`federator.config` (length, the
entropy estimate ``low_entropy``, secret and audit keys differing) and the
credentials key is a Fernet key, as ``federator.registry.secrets`` reads it.
"""

from __future__ import annotations

import secrets
import shlex

from cryptography.fernet import Fernet

from federator.config import low_entropy


def fresh_secrets() -> dict[str, str]:
    """New random values for the three keys an operator must set in production."""
    while True:  # token_urlsafe(48) is 64 characters, ~380 bits: one draw in practice
        secret, audit = secrets.token_urlsafe(48), secrets.token_urlsafe(48)
        if secret != audit and not low_entropy(secret) and not low_entropy(audit):
            break
    return {"FEDERATOR_SECRET_KEY": secret, "FEDERATOR_AUDIT_KEY": audit,
            "FEDERATOR_CREDENTIALS_KEY": Fernet.generate_key().decode()}


def export_lines(values: dict[str, str]) -> list[str]:
    """``export NAME=value`` lines a POSIX shell (or an env file) reads back."""
    return [f"export {name}={shlex.quote(value)}" for name, value in values.items()]
