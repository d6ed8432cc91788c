"""Validating bearer tokens (JWTs) from the configured OpenID provider."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Mapping
from typing import Any

import requests
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from federator.lookup.service import Principal

ROLES = ("practitioner", "auditor", "broker-admin", "authority-admin")


class InvalidToken(Exception):
    """The token cannot be accepted; the message is safe to show."""


class ProviderUnavailable(Exception):
    """The identity provider's discovery document or keys could not be fetched."""


class TokenValidator:
    """Discovery and JWKS fetched lazily, cached, keys re-fetched on an unknown ``kid``."""

    def __init__(self, issuer: str, audience: str, *, roles_claim: str = "roles",
                 refresh_interval_s: float = 10.0, timeout_s: float = 5.0) -> None:
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self.roles_claim = roles_claim
        self.refresh_interval_s = refresh_interval_s
        self.timeout_s = timeout_s
        self._keys: KeySet | None = None
        self._fetched_at = 0.0
        self._jwks_uri: str | None = None
        self._lock = threading.Lock()
        self._http = requests.Session()
        self._http.trust_env = False

    def principal(self, token: str) -> Principal:
        claims = self.claims(token)
        roles = claims.get(self.roles_claim) or []
        if isinstance(roles, str):
            roles = roles.split()
        name = claims.get("name") or claims.get("preferred_username") or claims["sub"]
        return Principal(
            id=str(claims["sub"]), name=str(name),
            roles=tuple(r for r in roles if r in ROLES),
            organisation=str(claims.get("organisation") or ""),
            job_title=str(claims.get("job_title") or ""),
            authority=str(claims["authority"]) if claims.get("authority") else None,
        )

    def claims(self, token: str) -> Mapping[str, Any]:
        kid = _kid(token)
        keys = self._key_set(kid)
        try:
            decoded = jwt.decode(token, keys, algorithms=["ES256", "RS256", "PS256", "EdDSA"])
            JWTClaimsRegistry(
                leeway=30,
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.audience},
                exp={"essential": True},
                sub={"essential": True},
            ).validate(decoded.claims)
        except JoseError as e:
            raise InvalidToken(f"token rejected: {e.error}") from e
        except ValueError as e:
            raise InvalidToken("token is malformed") from e
        return decoded.claims

    def _key_set(self, kid: str | None) -> KeySet:
        with self._lock:
            known = self._keys is not None and (
                kid is None or any(k.kid == kid for k in self._keys.keys))
            stale_ok = time.monotonic() - self._fetched_at < self.refresh_interval_s
            if self._keys is None or (not known and not stale_ok):
                self._keys = self._fetch_keys()
                self._fetched_at = time.monotonic()
            return self._keys

    def _fetch_keys(self) -> KeySet:
        try:
            if self._jwks_uri is None:
                config = self._get(f"{self.issuer}/.well-known/openid-configuration")
                if config.get("issuer", "").rstrip("/") != self.issuer:
                    raise ProviderUnavailable("discovery document names another issuer")
                self._jwks_uri = str(config["jwks_uri"])
            return KeySet.import_key_set(self._get(self._jwks_uri))
        except (requests.RequestException, ValueError, KeyError, TypeError) as e:
            raise ProviderUnavailable("identity provider unavailable") from e

    def _get(self, url: str) -> dict[str, Any]:
        response = self._http.get(url, timeout=self.timeout_s, allow_redirects=False)
        response.raise_for_status()
        data = response.json()
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return data


def _kid(token: str) -> str | None:
    try:
        head = token.split(".")[0]
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, IndexError) as e:
        raise InvalidToken("token is malformed") from e
    kid = header.get("kid") if isinstance(header, dict) else None
    return str(kid) if kid else None
