"""How the FHIR R4 client obtains its access token: OAuth2 client credentials with
a ``client_secret`` (HTTP Basic), or SMART Backend Services (a client assertion
JWT signed with the endpoint's ``private_key``, :mod:`adapters.smart_auth`), the
token URL given or discovered from ``.well-known/smart-configuration``.

Token requests go through the client's own pool (URL guard at connect, no
redirects, within the deadline). The token is cached until shortly before it
expires, in Redis when the broker has it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote_plus, urlencode, urlsplit

from adapters.base import AdapterError, AdapterTimeout, OutboundClient, Target
from adapters.fhir_tokens import TokenCache
from adapters.smart_auth import (
    CLIENT_SECRET,
    SMART_BACKEND,
    SmartKeyError,
    auth_method,
    build_assertion,
    key_id,
    load_private_key,
    token_form,
)

TOKEN_MARGIN_S = 30
DISCOVERY_TTL_S = 3600
OAUTH_ERROR = re.compile(r"^[a-z_]{1,40}$")


class FhirAuth(OutboundClient):
    """The token half of :class:`adapters.fhir_r4.FhirR4Client`."""

    tokens: TokenCache

    def _token(self, target: Target, deadline: float) -> tuple[str | None, bool]:
        """The access token and whether it came from the cache (None: no credentials)."""
        creds = target.credentials or {}
        try:
            method = auth_method(creds)
        except ValueError as e:
            raise AdapterError(f"credentials: {e}") from e
        if method == CLIENT_SECRET and not creds.get("token_url"):
            return None, False
        key = _token_key(target)
        held = self.tokens.get(key)
        if held:
            return held, True
        if min(deadline - time.monotonic(), target.timeout_ms / 1000) <= 0:
            raise AdapterTimeout("no time left to obtain an access token")
        if method == SMART_BACKEND:
            token = self._smart_token(target, creds, deadline)
        else:
            token = self._secret_token(target, creds, deadline)
        access = token.get("access_token")
        if not access or not isinstance(access, str):
            raise AdapterError("the token endpoint gave no access token")
        try:
            lifetime = int(token.get("expires_in") or 300)
        except (TypeError, ValueError):
            lifetime = 300
        keep = lifetime - min(TOKEN_MARGIN_S, lifetime // 2)
        if keep >= 1:
            self.tokens.set(key, access, keep)
        return access, False

    def _secret_token(self, target: Target, creds: Mapping[str, str], deadline: float
                      ) -> Mapping[str, Any]:
        """OAuth2 client credentials with ``client_secret`` (HTTP Basic, RFC 6749 2.3.1)."""
        pair = f"{quote_plus(creds.get('client_id') or '')}:" \
               f"{quote_plus(creds.get('client_secret') or '')}"
        form = {"grant_type": "client_credentials"}
        if creds.get("scope"):
            form["scope"] = creds["scope"]
        basic = base64.b64encode(pair.encode()).decode()
        return self._post_token(target, creds["token_url"], form, "client credentials",
                                deadline, {"Authorization": f"Basic {basic}"})

    def _smart_token(self, target: Target, creds: Mapping[str, str], deadline: float
                     ) -> Mapping[str, Any]:
        """SMART Backend Services: client credentials with a signed client assertion
        (:mod:`adapters.smart_auth`)."""
        try:
            private = load_private_key(creds.get("private_key") or "")
        except SmartKeyError as e:
            raise AdapterError(f"SMART credentials: {e}") from e
        client_id = creds.get("client_id")
        if not client_id:
            raise AdapterError("SMART credentials: client_id is missing")
        token_url = creds.get("token_url") or self._discover_token_url(target, deadline)
        assertion = build_assertion(private, client_id=client_id, token_url=token_url,
                                    now=int(time.time()), kid=key_id(private, creds))
        return self._post_token(target, token_url, token_form(assertion, creds.get("scope")),
                                "SMART client assertion", deadline, {})

    def _post_token(self, target: Target, token_url: str, form: Mapping[str, str],
                    what: str, deadline: float, headers: Mapping[str, str]) -> dict[str, Any]:
        """POST the token request through this client's pool: the URL guard checks the
        address at connect, no redirect is followed, and the deadline bounds it."""
        parts = urlsplit(token_url)
        origin = f"{parts.scheme}://{parts.netloc}"
        where = Target(id=target.id, url=origin, timeout_ms=target.timeout_ms)
        reply = self.request("POST", where, token_url[len(origin):] or "/",
                             body=urlencode(form).encode(), deadline=deadline, headers={
                                 "Content-Type": "application/x-www-form-urlencoded",
                                 "Accept": "application/json", **headers})
        data = _json_object(reply.body)
        if reply.status != 200:
            code = str(data.get("error") or "")
            named = f" {code}" if OAUTH_ERROR.match(code) else ""
            raise AdapterError("could not obtain an access token: the token endpoint refused "
                               f"the {what} (HTTP {reply.status}{named})")
        return data

    def _discover_token_url(self, target: Target, deadline: float) -> str:
        """The ``token_endpoint`` of ``{base}/.well-known/smart-configuration``, kept
        an hour in the token cache."""
        key = "smart-config:" + hashlib.sha256(target.url.encode()).hexdigest()[:32]
        held = self.tokens.get(key)
        if held:
            return held
        reply = self.request("GET", target, "/.well-known/smart-configuration",
                             headers={"Accept": "application/json"}, deadline=deadline)
        found = _json_object(reply.body).get("token_endpoint") if reply.status == 200 else None
        if not isinstance(found, str) or not _allowed_token_url(found, target.url):
            raise AdapterError("SMART credentials have no token_url and the FHIR server's "
                               ".well-known/smart-configuration names no usable token_endpoint")
        self.tokens.set(key, found, DISCOVERY_TTL_S)
        return found


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _allowed_token_url(url: str, base: str) -> bool:
    """https, or plain http only when the FHIR server itself is (allowed) plain http."""
    scheme, host = urlsplit(url).scheme, urlsplit(url).hostname
    return bool(host) and (scheme == "https" or (scheme == "http"
                                                 and urlsplit(base).scheme == "http"))


def _token_key(target: Target) -> str:
    creds = target.credentials or {}
    raw = (f"{target.id}|{creds.get('token_url')}|{creds.get('client_id')}|{creds.get('scope')}"
           f"|{creds.get('auth')}|{creds.get('kid')}")
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


