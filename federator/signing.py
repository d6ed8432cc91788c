"""The broker's signing keys (ES256): sign requests to adapters, publish the JWKS."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from joserfc.jwk import ECKey

from adapters.protocol import generate_signing_key, public_jwks, sign_request


class BrokerKeys:
    def __init__(self, key: ECKey, issuer: str) -> None:
        self.key = key
        self.issuer = issuer

    @classmethod
    def load(cls, path: Path, issuer: str, *, create: bool) -> BrokerKeys:
        """Read a private JWK; in development create one (mode 0600) when absent."""
        if not path.exists():
            if not create:
                raise FileNotFoundError(f"signing key file {path} does not exist")
            path.parent.mkdir(parents=True, exist_ok=True)
            key = generate_signing_key()
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump(key.as_dict(private=True), handle)
        data = json.loads(path.read_text())
        return cls(ECKey.import_key(data), issuer)

    def sign(self, body: bytes, audience: str) -> str:
        return sign_request(body, self.key, issuer=self.issuer, audience=audience)

    def jwks(self) -> dict[str, Any]:
        return public_jwks([self.key])
