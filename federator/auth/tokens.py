"""Validating bearer tokens (JWTs) from the configured OpenID provider."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import requests
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from federator.auth.principal import Principal
from federator.config import ROLE_NAMES
from federator.inputs import bad_text

ROLES = ROLE_NAMES
#: Asymmetric signatures only: never ``none``, never an HMAC a client could forge.
ALGORITHMS = ("ES256", "ES384", "RS256", "PS256", "EdDSA")
MAX_TOKEN_BYTES = 16 * 1024
LEEWAY_S = 30
#: How long a validated token is remembered, and how many are.
CACHE_S = 30.0
CACHE_SIZE = 4096


class InvalidToken(Exception):
    """The token cannot be accepted; the message is safe to show."""


class ProviderUnavailable(Exception):
    """The identity provider's discovery document or keys could not be fetched."""


class TokenValidator:
    """Discovery and JWKS fetched lazily, cached, keys re-fetched on an unknown ``kid``."""

    def __init__(self, issuer: str, audience: str, *, roles_claim: str = "roles",
                 organisation_claim: str = "organisation", authority_claim: str = "authority",
                 clients: tuple[str, ...] = (), required_acr: tuple[str, ...] = (),
                 refresh_interval_s: float = 10.0, timeout_s: float = 5.0,
                 ca_file: str | None = None, role_map: Mapping[str, str] | None = None,
                 role_selector: tuple[str, str] | None = None) -> None:
        self.role_map = role_map
        self.role_selector = role_selector
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self.clients = clients
        self.required_acr = required_acr
        self.roles_claim = roles_claim
        self.organisation_claim = organisation_claim
        self.authority_claim = authority_claim
        self.refresh_interval_s = refresh_interval_s
        self.timeout_s = timeout_s
        self._keys: KeySet | None = None
        self._fetched_at = 0.0
        self._jwks_uri: str | None = None
        self._lock = threading.Lock()
        self._validated: OrderedDict[bytes, tuple[Mapping[str, Any], float, float]] = (
            OrderedDict())
        self._http = requests.Session()
        self._http.trust_env = False
        if ca_file:
            self._http.verify = ca_file

    def principal(self, token: str) -> Principal:
        return principal_from_claims(self.claims(token), roles_claim=self.roles_claim,
                                     organisation_claim=self.organisation_claim,
                                     authority_claim=self.authority_claim,
                                     role_map=self.role_map,
                                     role_selector=self.role_selector)

    def claims(self, token: str) -> Mapping[str, Any]:
        """The validated claims; ``InvalidToken`` for anything not to be trusted.

        A token that passed is remembered for ``CACHE_S`` seconds (never past its
        ``exp``; at most ``CACHE_SIZE`` tokens, least recently used dropped first):
        a case system sends the same token with every lookup, and checking its
        signature again each time was a fixed cost on every lookup. A token is a
        bearer credential valid until ``exp`` however often it is checked; the cache
        only delays by up to ``CACHE_S`` noticing that the provider withdrew its key."""
        if len(token) > MAX_TOKEN_BYTES:
            raise InvalidToken("token is too large")
        digest = hashlib.sha256(token.encode()).digest()
        with self._lock:
            hit = self._validated.get(digest)
            if hit is not None:
                claims, until, exp = hit
                if time.monotonic() < until and time.time() < exp:
                    self._validated.move_to_end(digest)
                    return claims
                del self._validated[digest]
        claims = self._check(token)
        exp = claims.get("exp")
        if isinstance(exp, int | float) and not isinstance(exp, bool):
            with self._lock:
                claims = MappingProxyType(dict(claims))  # shared by threads: read-only
                self._validated[digest] = (claims, time.monotonic() + CACHE_S, float(exp))
                while len(self._validated) > CACHE_SIZE:
                    self._validated.popitem(last=False)
        return claims

    def _check(self, token: str) -> Mapping[str, Any]:
        header = _header(token)
        if header.get("alg") not in ALGORITHMS:
            raise InvalidToken("token rejected: signing algorithm not accepted")
        kid = str(header["kid"]) if header.get("kid") else None
        keys = self._key_set(kid)
        if kid is not None and not any(k.kid == kid for k in keys.keys):
            raise InvalidToken("token rejected: signed with a key the provider does not publish")
        try:
            decoded = jwt.decode(token, keys, algorithms=list(ALGORITHMS))
            JWTClaimsRegistry(
                leeway=LEEWAY_S,
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.audience},
                exp={"essential": True},
                sub={"essential": True},
            ).validate(decoded.claims)
        except JoseError as e:
            raise InvalidToken(f"token rejected: {e.error}") from e
        except (ValueError, TypeError) as e:
            raise InvalidToken("token is malformed") from e
        problem = (access_token_problem(header, decoded.claims, self.clients)
                   or acr_problem(decoded.claims, self.required_acr))
        if problem is not None:
            raise InvalidToken(f"token rejected: {problem}")
        return decoded.claims

    def id_token_claims(self, token: str, client_id: str) -> Mapping[str, Any]:
        """The claims of an ID token the provider issued to ``client_id`` (a refresh
        grant's): signature, ``iss``, ``aud``, ``exp`` and ``sub`` checked, as OpenID
        Connect Core 3.1.3.7 asks; ``InvalidToken`` otherwise. Never an API credential."""
        if len(token) > MAX_TOKEN_BYTES:
            raise InvalidToken("token is too large")
        header = _header(token)
        if header.get("alg") not in ALGORITHMS:
            raise InvalidToken("token rejected: signing algorithm not accepted")
        keys = self._key_set(str(header["kid"]) if header.get("kid") else None)
        try:
            decoded = jwt.decode(token, keys, algorithms=list(ALGORITHMS))
            JWTClaimsRegistry(
                leeway=LEEWAY_S, iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": client_id}, exp={"essential": True},
                sub={"essential": True}).validate(decoded.claims)
        except JoseError as e:
            raise InvalidToken(f"ID token rejected: {e.error}") from e
        except (ValueError, TypeError) as e:
            raise InvalidToken("ID token is malformed") from e
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


def _header(token: str) -> dict[str, Any]:
    try:
        head = token.split(".")[0]
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, IndexError) as e:
        raise InvalidToken("token is malformed") from e
    if not isinstance(header, dict):
        raise InvalidToken("token is malformed")
    return header


#: The ``typ`` of an access token (RFC 9068 section 2.1), compared without case.
ACCESS_TOKEN_TYPES = ("at+jwt", "application/at+jwt")
#: Claims only an ID token carries (OpenID Connect Core 2 and 3.3.2.11).
ID_TOKEN_CLAIMS = ("nonce", "at_hash", "c_hash", "s_hash")


def access_token_problem(header: Mapping[str, Any], claims: Mapping[str, Any],
                         clients: tuple[str, ...] = ()) -> str | None:
    """Why a JWT is not an access token this API accepts, or None.

    An ID token (or any other JWT of the provider naming the audience) is not a
    credential for the API: a token is accepted when its header says ``typ:
    at+jwt`` (RFC 9068), or, with ``clients`` (``FEDERATOR_OIDC_TOKEN_CLIENTS``) set,
    when it names one of them and carries no ID token claim. With ``clients`` set,
    every token must name one of them (``client_id``, else ``azp``)."""
    typ = header.get("typ")
    typed = isinstance(typ, str) and typ.lower() in ACCESS_TOKEN_TYPES
    if any(name in claims for name in ID_TOKEN_CLAIMS) or (
            isinstance(claims.get("typ"), str) and claims["typ"].lower() == "id"):
        return "an ID token is not an access token"
    client = claims.get("client_id") or claims.get("azp")
    if clients:
        if not isinstance(client, str) or client not in clients:
            return "issued to a client this API does not accept"
        return None
    if not typed:
        return "not an access token (the header's typ must be at+jwt)"
    return None


def acr_problem(claims: Mapping[str, Any], required: tuple[str, ...]) -> str | None:
    """Why the claims' authentication level (``acr``) is not one of ``required``."""
    if not required:
        return None
    acr = claims.get("acr")
    if not isinstance(acr, str) or not acr:
        return "no authentication level (acr) is given"
    if acr not in required:
        return "the authentication level (acr) is not one this service accepts"
    return None


def claim(claims: Mapping[str, Any], path: str) -> Any:
    """A claim by name, or by a dotted path into nested objects (``realm_access.roles``);
    through a list of objects the path is followed into each, and what they hold is
    one list (``nhsid_nrbac_roles.role_code``: every RBAC role's code)."""
    if path in claims:
        return claims[path]
    return _follow(claims, path.split("."))


def _follow(value: Any, parts: list[str]) -> Any:
    if not parts:
        return value
    if isinstance(value, Mapping):
        return _follow(value[parts[0]], parts[1:]) if parts[0] in value else None
    if isinstance(value, list):
        found: list[Any] = []
        for item in value:
            inner = _follow(item, parts) if isinstance(item, Mapping) else None
            if isinstance(inner, list):
                found.extend(inner)
            elif inner is not None:
                found.append(inner)
        return found or None
    return None


def selected(claims: Mapping[str, Any], top: str, chosen_claim: str,
             item_field: str) -> Mapping[str, Any]:
    """``claims`` with the list ``top`` narrowed to the objects whose ``item_field``
    equals the claim ``chosen_claim``. When that claim is absent, a user holding one
    role object keeps it, and one holding several keeps none: with no role chosen, the
    roles held at other organisations must not count together."""
    chosen = claims.get(chosen_claim)
    items = claims.get(top)
    if not isinstance(items, list):
        return claims
    if chosen is None:
        return claims if len(items) <= 1 else {**claims, top: []}
    return {**claims, top: [i for i in items
                            if isinstance(i, Mapping) and i.get(item_field) == chosen]}


#: The longest subject or organisation the trail can record (``audit_records``'
#: ``actor_id`` and ``actor_organisation``)
ID_LENGTH = 200


def principal_from_claims(claims: Mapping[str, Any], *, roles_claim: str = "roles",
                          organisation_claim: str = "organisation",
                          authority_claim: str = "authority",
                          role_map: Mapping[str, str] | None = None,
                          role_selector: tuple[str, str] | None = None) -> Principal:
    """Who the claims describe. Only known roles are kept; ``authority-admin`` only
    with the authority it administers. With ``role_map`` (``FEDERATOR_ROLE_MAP``) the
    claim's values are mapped to roles through it, and values it does not list grant
    nothing. An organisation claim holding a list gives its one value when all its
    values are the same text, else none. With ``role_selector`` (``(claim, field)``,
    ``FEDERATOR_ROLE_SELECTOR``) and ``claim`` present, only the roles list's objects
    whose ``field`` equals it are read. Raises ``InvalidToken`` without a ``sub``."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise InvalidToken("token has no subject")
    if len(sub) > ID_LENGTH or bad_text(sub, multiline=False):
        # the trail records who asked by this (a column of 200): refused at sign-in,
        # not later as an audit failure on every lookup
        raise InvalidToken(f"token's subject is not text of at most {ID_LENGTH} characters")
    if role_selector is not None:
        claims = selected(claims, roles_claim.split(".")[0], *role_selector)
    raw = claim(claims, roles_claim) or []
    if isinstance(raw, str):
        raw = raw.replace(",", " ").split()
    if not isinstance(raw, list | tuple):
        raw = []
    if role_map:
        raw = [role_map.get(r) for r in raw if isinstance(r, str)]
    authority = claim(claims, authority_claim)
    authority = str(authority) if isinstance(authority, str | int) and authority else None
    roles = tuple(dict.fromkeys(
        r for r in raw if isinstance(r, str) and r in ROLES
        and (r != "authority-admin" or authority is not None)))
    name = claims.get("name") or claims.get("preferred_username") or sub
    organisation = claim(claims, organisation_claim)
    if isinstance(organisation, list):  # one organisation, or none: never a guess
        distinct = set(organisation) if all(isinstance(o, str) for o in organisation) else ()
        organisation = next(iter(distinct)) if len(distinct) == 1 else ""
    if isinstance(organisation, str) and (len(organisation) > ID_LENGTH
                                          or bad_text(organisation, multiline=False)):
        raise InvalidToken(f"token's {organisation_claim} is not text of at most "
                           f"{ID_LENGTH} characters")
    return Principal(
        id=sub, name=str(name), roles=roles,
        organisation=str(organisation) if isinstance(organisation, str | int) else "",
        job_title=str(claims.get("job_title") or ""),
        authority=authority,
        email=str(claims["email"]) if isinstance(claims.get("email"), str) else "",
        family_name=(str(claims["family_name"])
                     if isinstance(claims.get("family_name"), str) else ""),
    )
