"""Endpoint credentials, encrypted at rest with Fernet (cryptography).

The key comes from ``FEDERATOR_CREDENTIALS_KEY``: one or more Fernet keys,
comma-separated, newest first (``MultiFernet``: encrypts with the first,
decrypts with any, so the key can be rotated by prepending a new one).
Credentials are never returned by the API and never logged: ``describe``
gives the only view of them that leaves this module (the field names).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class CredentialsKeyError(RuntimeError):
    """No usable key to encrypt or decrypt credentials; the message names the setting."""


def parse_keys(raw: str | None) -> MultiFernet | None:
    """``None`` when no key is configured; ``ValueError`` naming the setting when bad."""
    if not raw:
        return None
    try:
        keys = [Fernet(k.strip().encode()) for k in raw.split(",") if k.strip()]
    except ValueError as e:
        raise ValueError("FEDERATOR_CREDENTIALS_KEY must be Fernet keys (32 url-safe "
                         "base64-encoded bytes), comma-separated") from e
    return MultiFernet(keys) if keys else None


def development_key(instance_dir: Path) -> str:
    """A key kept in the instance folder (mode 0600), for development only."""
    path = instance_dir / "credentials.key"
    if not path.exists():
        instance_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(Fernet.generate_key().decode())
    return path.read_text().strip()


class CredentialCipher:
    def __init__(self, keys: MultiFernet | None) -> None:
        self._keys = keys

    @property
    def available(self) -> bool:
        return self._keys is not None

    def encrypt(self, credentials: Mapping[str, str]) -> str:
        if self._keys is None:
            raise CredentialsKeyError(
                "FEDERATOR_CREDENTIALS_KEY is not set: credentials cannot be stored")
        plain = json.dumps(dict(credentials), sort_keys=True).encode()
        return self._keys.encrypt(plain).decode()

    def decrypt(self, token: str) -> dict[str, str]:
        if self._keys is None:
            raise CredentialsKeyError(
                "FEDERATOR_CREDENTIALS_KEY is not set: stored credentials cannot be read")
        try:
            return dict(json.loads(self._keys.decrypt(token.encode())))
        except InvalidToken as e:
            raise CredentialsKeyError(
                "stored credentials do not open with FEDERATOR_CREDENTIALS_KEY "
                "(was the key changed without keeping the old one?)") from e


def describe(credentials: Mapping[str, str] | None) -> dict[str, object]:
    """What may be shown about stored credentials: that they exist, and their field names."""
    if not credentials:
        return {"stored": False, "fields": []}
    return {"stored": True, "fields": sorted(credentials)}
