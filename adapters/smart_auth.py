"""SMART Backend Services (SMART App Launch v2, "client-confidential-asymmetric"):
the broker proves who it is to an authority's FHIR token endpoint with a short
JWT signed by its own private key (``private_key_jwt``), not a shared secret.

Credentials of a ``fhir-r4`` endpoint that uses it (stored encrypted in the
registry like any credentials):

- ``auth = "smart_backend"`` (a ``private_key`` without ``auth`` means the same);
- ``client_id``: the client the authority registered for the broker;
- ``private_key``: the signing key, a PEM (PKCS#8) or a private JWK (JSON);
  EC P-384 (signs ES384) or RSA of 2048 bits or more (signs RS384), the two
  algorithms SMART requires every server to accept;
- ``token_url`` (optional): when absent, the ``token_endpoint`` of the FHIR
  server's ``.well-known/smart-configuration``;
- ``kid`` (optional): the key's id; default the JWK's ``kid``, else its
  RFC 7638 thumbprint;
- ``scope`` (optional): default :data:`DEFAULT_SCOPE`;
- ``next_private_key`` and ``next_from`` (set by rotation, :func:`stage_new_key`):
  a new key published next to the one in use, signing from ``next_from``
  (epoch seconds); given as input (the registry API), :func:`staged_key_problems`
  checks them.

The authority registers the broker's *public* JWKS (:func:`public_jwks`,
printed by ``federator registry smart-key ENDPOINT``) with its FHIR server.
Everything here is pure: no network, no clock but the ``now`` given.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey

SMART_BACKEND = "smart_backend"
CLIENT_SECRET = "client_secret"  # noqa: S105 - the name of a method, not a secret
AUTH_METHODS = (CLIENT_SECRET, SMART_BACKEND)
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: SMART: the assertion's ``exp`` no more than five minutes in the future.
MAX_LIFETIME_S = 300
#: What the broker reads, in SMART v2 scope syntax (read + search).
DEFAULT_SCOPE = " ".join(f"system/{kind}.rs" for kind in (
    "Patient", "CareTeam", "EpisodeOfCare", "Practitioner", "PractitionerRole", "Organization"))
ALGORITHMS = {"EC": "ES384", "RSA": "RS384"}
MIN_RSA_BITS = 2048

SigningKey = ECKey | RSAKey


class SmartKeyError(ValueError):
    """A private key SMART cannot use; the message says why (never the key)."""


def auth_method(credentials: Mapping[str, str]) -> str:
    """``smart_backend`` or ``client_secret``; ``ValueError`` for another ``auth``."""
    given = credentials.get("auth")
    if not given:
        return SMART_BACKEND if credentials.get("private_key") else CLIENT_SECRET
    if given not in AUTH_METHODS:
        raise ValueError(f"auth must be one of: {', '.join(AUTH_METHODS)}")
    return given


def load_private_key(text: str) -> SigningKey:
    """A private EC P-384 or RSA (>= 2048 bits) key from a PEM or a JWK (JSON)."""
    text = text.strip()
    try:
        if text.startswith("{"):
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("kty") not in ALGORITHMS:
                raise SmartKeyError("the JWK must be an EC (P-384) or RSA private key")
            _check_size(data.get("kty"), data.get("crv"), _jwk_bits(data.get("n")))
            key: SigningKey = (ECKey if data["kty"] == "EC" else RSAKey).import_key(data)
        else:
            loaded = load_pem_private_key(text.encode(), password=None)
            if isinstance(loaded, ec.EllipticCurvePrivateKey):
                _check_size("EC", loaded.curve.name, 0)
                key = ECKey.import_key(text)
            elif isinstance(loaded, rsa.RSAPrivateKey):
                _check_size("RSA", None, loaded.key_size)
                key = RSAKey.import_key(text)
            else:
                raise SmartKeyError("the PEM must be an EC (P-384) or RSA private key")
    except SmartKeyError:
        raise
    except (ValueError, TypeError, KeyError, JoseError) as e:
        raise SmartKeyError("private_key is not a readable PEM or JWK private key") from e
    if not key.is_private:
        raise SmartKeyError("private_key holds only a public key")
    return key


def signing_key(text: str) -> SigningKey:
    """:func:`load_private_key`, and proof that the key signs: a token it signs
    verifies with its public part (what a FHIR server will do with the JWKS)."""
    key = load_private_key(text)
    alg = algorithm(key)
    try:
        signed = jwt.encode({"alg": alg}, {"iss": "key-check"}, key, algorithms=[alg])
        public = type(key).import_key(dict(key.as_dict(private=False)))
        jwt.decode(signed, public, algorithms=[alg])
    except (ValueError, TypeError, JoseError):
        raise SmartKeyError("private_key does not make signatures its public key "
                            "verifies") from None
    return key


def _jwk_bits(n: object) -> int:
    if not isinstance(n, str):
        return 0
    raw = base64.urlsafe_b64decode(n + "=" * (-len(n) % 4))
    return int.from_bytes(raw, "big").bit_length()


def _check_size(kty: object, curve: object, bits: int) -> None:
    """Before joserfc sees the key (it only warns about weak ones)."""
    if kty == "EC" and curve not in ("P-384", "secp384r1"):
        raise SmartKeyError("an EC private_key must use the P-384 curve (ES384)")
    if kty == "RSA" and bits < MIN_RSA_BITS:
        raise SmartKeyError(f"an RSA private_key must have at least {MIN_RSA_BITS} bits")


def algorithm(key: SigningKey) -> str:
    return ALGORITHMS[key.key_type]


def key_id(key: SigningKey, credentials: Mapping[str, str] | None = None) -> str:
    """The ``kid``: configured, else the JWK's own, else its RFC 7638 thumbprint."""
    given = (credentials or {}).get("kid")
    return str(given or key.kid or key.thumbprint())


def build_assertion(key: SigningKey, *, client_id: str, token_url: str, now: int,
                    kid: str | None = None, lifetime_s: int = MAX_LIFETIME_S,
                    jti: str | None = None) -> str:
    """The signed ``client_assertion``: ``iss`` = ``sub`` = client id, ``aud`` = the
    token URL, ``exp`` at most five minutes after ``now``, a fresh ``jti``, and a
    header naming ``kid``, ``alg`` and ``typ: JWT``."""
    if not client_id:
        raise ValueError("client_id is required")
    if not 1 <= lifetime_s <= MAX_LIFETIME_S:
        raise ValueError(f"lifetime_s must be 1..{MAX_LIFETIME_S}")
    alg = algorithm(key)
    header = {"alg": alg, "kid": kid or key_id(key), "typ": "JWT"}
    claims: dict[str, Any] = {"iss": client_id, "sub": client_id, "aud": token_url,
                              "iat": now, "exp": now + lifetime_s,
                              "jti": jti or secrets.token_urlsafe(24)}
    return jwt.encode(header, claims, key, algorithms=[alg])


def token_form(assertion: str, scope: str | None) -> dict[str, str]:
    """The form posted to the token endpoint (no client secret, no Basic auth)."""
    return {"grant_type": "client_credentials", "scope": scope or DEFAULT_SCOPE,
            "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}


def public_jwk(key: SigningKey, kid: str | None = None) -> dict[str, Any]:
    public = dict(key.as_dict(private=False))
    public.update(kid=kid or key_id(key), alg=algorithm(key), key_ops=["verify"])
    return public


def public_jwks(*keys: tuple[SigningKey, str | None]) -> dict[str, Any]:
    """The JWKS the authority registers for the broker's client: public parts only."""
    return {"keys": [public_jwk(k, kid) for k, kid in keys]}


def generate_private_key(alg: str = "ES384") -> str:
    """A new private key as a JWK (JSON) with its thumbprint as ``kid``."""
    if alg == "ES384":
        key: SigningKey = ECKey.generate_key("P-384", private=True)
    elif alg == "RS384":
        key = RSAKey.generate_key(3072, private=True)
    else:
        raise ValueError("alg must be ES384 or RS384")
    data = dict(key.as_dict(private=True))
    data.update(kid=key.thumbprint(), alg=alg)
    return json.dumps(data, sort_keys=True)


def with_new_key(credentials: Mapping[str, str], private_key: str,
                 **given: str | None) -> dict[str, str]:
    """Endpoint credentials switched to SMART Backend Services with ``private_key``:
    the client secret and any old ``kid`` dropped, ``given`` fields (client_id,
    token_url, scope) set when not empty."""
    out = {k: v for k, v in credentials.items() if k not in ("client_secret", "kid", *STAGED)}
    out.update(auth=SMART_BACKEND, private_key=private_key)
    out.update({k: v for k, v in given.items() if v})
    return out


def key_update(credentials: Mapping[str, str], *, new_key: bool = False, alg: str = "ES384",
               **given: str | None) -> dict[str, str] | None:
    """What ``federator registry smart-key`` and the registry pages' "Create a key
    pair" store: ``credentials`` switched to SMART Backend Services with the stored
    private key (a new one when none is stored, or with ``new_key``) and the
    ``given`` fields set. ``None`` when there is nothing to change (a key is stored,
    no new one is asked for and nothing is given)."""
    stored = credentials.get("private_key")
    if stored and not new_key and not any(given.values()):
        return None
    private = stored if stored and not new_key else generate_private_key(alg)
    return with_new_key(credentials, private, **given)


def credentials_jwks(credentials: Mapping[str, str], now: float) -> dict[str, Any] | None:
    """The public JWKS of the credentials' keys in force at ``now`` (``None``
    without a private key): the signing key, and a staged next key first."""
    creds = in_force(credentials, now)
    if not creds.get("private_key"):
        return None
    key = load_private_key(creds["private_key"])
    keys = [(key, key_id(key, creds))]
    if creds.get("next_private_key"):
        staged = load_private_key(creds["next_private_key"])
        keys.insert(0, (staged, key_id(staged)))
    return public_jwks(*keys)


# -- rotation with overlap ----------------------------------------------------------
#
# A FHIR server holds the JWKS its authority registered, so a new key cannot sign
# until the authority has registered it. Rotation therefore stages the new key:
# ``next_private_key`` is published next to the key in use at once, the broker
# keeps signing with the old key until ``next_from`` (epoch seconds; the overlap)
# or until the old key is retired, and then only the new key signs and is
# published. ``in_force`` gives the credentials as they stand at a moment.

STAGED = ("next_private_key", "next_from")
#: The latest ``next_from`` taken: the last second of the year 9999.
MAX_SWITCH_S = 253_402_300_799
SWITCH_TIME = ("must be a time in whole seconds since 1970-01-01 UTC (for example "
               "1767225600)")


def switch_time(value: object) -> int | None:
    """``next_from`` as epoch seconds: ASCII digits up to :data:`MAX_SWITCH_S`;
    ``None`` for anything else (``"soon"``, ``"1.5e9"``, ``"nan"``, ``"inf"``)."""
    text = value.strip() if isinstance(value, str) else ""
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(MAX_SWITCH_S)):
        return None
    seconds = int(text)
    return seconds if seconds <= MAX_SWITCH_S else None


def staged_key_problems(credentials: Mapping[str, str]) -> dict[str, list[str]]:
    """Why credentials given as input (registry API or form) cannot stage a key:
    ``next_private_key`` and ``next_from`` go together, with SMART Backend
    Services only; the key must sign (:func:`signing_key`) and the time be a
    :func:`switch_time`. Empty when neither is given. Messages never repeat the key."""
    key, when = credentials.get("next_private_key"), credentials.get("next_from")
    if not key and not when:
        return {}
    problems: dict[str, list[str]] = {}
    try:
        smart = auth_method(credentials) == SMART_BACKEND
    except ValueError:
        smart = True  # the unknown ``auth`` is named on its own
    if not smart:
        problems["next_private_key"] = [
            "a next key is only for SMART Backend Services (auth smart_backend, with a "
            "private_key)"]
    elif not key:
        problems["next_private_key"] = ["Missing data for required field (next_from is "
                                        "given)."]
    else:
        try:
            signing_key(key)
        except SmartKeyError as e:
            problems["next_private_key"] = [str(e).replace("private_key", "next_private_key")]
    if not when:
        problems["next_from"] = ["Missing data for required field (next_private_key is "
                                 "given)."]
    elif switch_time(when) is None:
        problems["next_from"] = [f"next_from {SWITCH_TIME}"]
    return problems


def in_force(credentials: Mapping[str, str], now: float) -> dict[str, str]:
    """The credentials at ``now``: a staged key whose time has come is the key
    (an unreadable or missing ``next_from`` counts as come: the newer key)."""
    out = dict(credentials)
    if not out.get("next_private_key"):
        return out
    due = switch_time(out.get("next_from"))
    return _promoted(out) if due is None or due <= now else out


def _promoted(credentials: Mapping[str, str]) -> dict[str, str]:
    out = {k: v for k, v in credentials.items() if k not in ("kid", *STAGED)}
    out["private_key"] = credentials["next_private_key"]
    return out


def stage_new_key(credentials: Mapping[str, str], *, alg: str, overlap_s: int,
                  now: float) -> dict[str, str]:
    """A new key published at once and signing from ``now + overlap_s`` (the old
    key signs and stays published until then). Without a stored key, or with no
    overlap, the new key replaces the old one at once (``with_new_key``)."""
    creds = in_force(credentials, now)
    if not creds.get("private_key") or overlap_s <= 0:
        return with_new_key(creds, generate_private_key(alg))
    out = {k: v for k, v in creds.items() if k != "client_secret"}
    out.update(auth=SMART_BACKEND, next_private_key=generate_private_key(alg),
               next_from=str(int(now + overlap_s)))
    return out


def retire_old_key(credentials: Mapping[str, str]) -> dict[str, str] | None:
    """The staged key signing from now on, the old one no longer published;
    ``None`` when no key is staged (or its time has come and gone: already so)."""
    if not credentials.get("next_private_key"):
        return None
    return _promoted(credentials)
