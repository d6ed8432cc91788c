"""The development identity provider's state: its clients, authorization
codes, signing key and the tokens it issues. No Flask, no routes."""

from __future__ import annotations

import hmac
import secrets
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from authlib.oauth2.rfc6749 import (
    AuthorizationCodeMixin,
    ClientMixin,
    TokenMixin,
    scope_to_list,
)
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from .personas import Persona, find_persona

AUDIENCE = "federator"
TOKEN_LIFETIME_S = 3600
#: A web sign-in's refresh token lasts as long as the broker's longest session.
REFRESH_LIFETIME_S = 10 * 3600
CODE_LIFETIME_S = 300
CLI_CLIENT_ID = "federator-cli"
WEB_CLIENT_ID = "federator-web"
WEB_CLIENT_SECRET = "federator-demo-secret"  # noqa: S105 - demo only, published
SCOPES = ("openid", "profile", "email", "roles")
_AUTH_METHODS = ["none", "client_secret_basic", "client_secret_post"]



@dataclass
class DemoClient(ClientMixin):
    client_id: str
    client_secret: str | None = None  # None: a public client
    redirect_uris: tuple[str, ...] = ()
    grant_types: tuple[str, ...] = ("password",)
    scope: str = " ".join(SCOPES)

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.redirect_uris[0] if self.redirect_uris else None

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return ""
        allowed = set(scope_to_list(self.scope))
        return " ".join(s for s in scope_to_list(scope) if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        if self.client_secret is None:
            return False
        return hmac.compare_digest(self.client_secret.encode(), client_secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.client_secret is None:
            return method == "none"
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


@dataclass
class _Refresh(TokenMixin):
    """A refresh token of the web client: whom it is for, and until when."""

    token: str
    client_id: str
    username: str
    scope: str
    expires_at: int

    def check_client(self, client: ClientMixin) -> bool:
        return bool(client.get_client_id() == self.client_id)

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return max(0, self.expires_at - int(time.time()))

    def is_expired(self) -> bool:
        return self.expires_at < time.time()

    def is_revoked(self) -> bool:
        return False


@dataclass
class _Code(AuthorizationCodeMixin):
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: Persona
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int
    expires_at: int

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time


# --------------------------------------------------------------------------
# The provider's state
# --------------------------------------------------------------------------


@dataclass
class DevIdentityProvider:
    """Keys, people, clients and pending authorization codes."""

    issuer: str
    personas: Mapping[str, Persona]
    authorities: Mapping[str, str]
    clients: dict[str, DemoClient]
    key: ECKey = field(repr=False, default=None)  # type: ignore[assignment]
    _codes: dict[str, _Code] = field(default_factory=dict, repr=False)
    _refresh: dict[str, _Refresh] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.key is None:
            kid = f"demo-idp-{secrets.token_hex(4)}"
            self.key = ECKey.generate_key(
                "P-256", parameters={"kid": kid, "use": "sig", "alg": "ES256"}, private=True
            )

    # -- keys and tokens --------------------------------------------------

    @property
    def kid(self) -> str:
        return self.key.kid

    def jwks(self) -> dict:
        return KeySet([self.key]).as_dict(private=False)

    def persona(self, username: str) -> Persona | None:
        return find_persona(username, self.personas, self.authorities)

    def _sign(self, claims: dict, typ: str = "JWT") -> str:
        return jwt.encode({"alg": "ES256", "kid": self.kid, "typ": typ}, claims, self.key)

    def issue_access_token(self, persona: Persona | str, *, client_id: str = CLI_CLIENT_ID,
                           scope: str | None = None, lifetime_s: int = TOKEN_LIFETIME_S
                           ) -> str:
        """An access token for a persona (also used in-process by tests)."""
        if isinstance(persona, str):
            found = self.persona(persona)
            if found is None:
                raise KeyError(persona)
            persona = found
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime_s,
            "jti": uuid.uuid4().hex,
            "client_id": client_id,
            **persona.claims(),
        }
        if scope:
            claims["scope"] = scope
        return self._sign(claims, typ="at+jwt")  # RFC 9068: only this is an access token

    def issue_id_token(self, persona: Persona, *, client_id: str, nonce: str | None,
                       auth_time: int) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": client_id,
            "iat": now,
            "exp": now + TOKEN_LIFETIME_S,
            "auth_time": auth_time,
            **persona.claims(),
        }
        if nonce:
            claims["nonce"] = nonce
        return self._sign(claims)

    def verify_access_token(self, token: str) -> dict:
        """The claims of one of our access tokens; raises ``JoseError``/``ValueError``."""
        decoded = jwt.decode(token, KeySet([self.key]), algorithms=["ES256"])
        registry = jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": AUDIENCE},
            exp={"essential": True},
        )
        registry.validate(decoded.claims)
        return dict(decoded.claims)

    # -- authorization codes ---------------------------------------------

    def save_code(self, item: _Code) -> None:
        with self._lock:
            now = int(time.time())
            for stale in [c for c, v in self._codes.items() if v.expires_at < now]:
                del self._codes[stale]
            self._codes[item.code] = item

    def find_code(self, code: str, client_id: str) -> _Code | None:
        with self._lock:
            item = self._codes.get(code)
        if item is None or item.client_id != client_id or item.expires_at < time.time():
            return None
        return item

    def delete_code(self, item: _Code) -> None:
        with self._lock:
            self._codes.pop(item.code, None)

    # -- refresh tokens (the broker re-reads roles with them) ---------------

    def new_refresh_token(self, client_id: str, username: str, scope: str) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            now = int(time.time())
            for stale in [t for t, v in self._refresh.items() if v.expires_at < now]:
                del self._refresh[stale]
            self._refresh[token] = _Refresh(token, client_id, username, scope,
                                            now + REFRESH_LIFETIME_S)
        return token

    def find_refresh_token(self, token: str) -> _Refresh | None:
        with self._lock:
            item = self._refresh.get(token)
        return item if item is not None and not item.is_expired() else None

    def revoke_refresh_token(self, item: _Refresh) -> None:
        with self._lock:
            self._refresh.pop(item.token, None)

    # -- discovery --------------------------------------------------------

    def discovery(self) -> dict:
        base = self.issuer
        return {
            "issuer": base,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "userinfo_endpoint": f"{base}/userinfo",
            "jwks_uri": f"{base}/jwks.json",
            "grant_types_supported": ["authorization_code", "password", "refresh_token"],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "token_endpoint_auth_methods_supported": _AUTH_METHODS,
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": list(SCOPES),
            "claims_supported": ["iss", "aud", "sub", "iat", "exp", "jti", "name", "email",
                                 "roles", "organisation", "job_title", "authority", "nonce"],
        }


# --------------------------------------------------------------------------
# authlib grants
# --------------------------------------------------------------------------
