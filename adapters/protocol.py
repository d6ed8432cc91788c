"""The ``federator-lookup/1`` wire protocol: schemas, signing and verifying.

Shared by the broker (which signs requests) and the adapter kit (which
verifies them). No Flask, no network.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet
from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate

from adapters.wire_professional import MAX_PROFESSIONALS, WireProfessional

PROTOCOL = "federator-lookup/1"
MAX_TOKEN_LIFETIME_S = 120
STATUSES = ("match", "no_match", "declined")
#: The child's details an answer's ``matched_on`` and ``ask_for`` may name.
MATCH_FIELDS = ("nhs_number", "given_name", "family_name", "date_of_birth", "postcode")
BASIS_TYPES = ("consent", "safeguarding", "statutory")


# --------------------------------------------------------------------------
# Schemas (answers are read with unknown fields dropped)
# --------------------------------------------------------------------------


class WireChild(Schema):
    class Meta:
        unknown = EXCLUDE

    nhs_number = fields.String(load_default=None, allow_none=True)
    given_name = fields.String(load_default=None, allow_none=True)
    family_name = fields.String(load_default=None, allow_none=True)
    date_of_birth = fields.String(load_default=None, allow_none=True)
    postcodes = fields.List(fields.String(), load_default=list)


class WireRequester(Schema):
    class Meta:
        unknown = EXCLUDE

    id = fields.String(required=True)
    name = fields.String(load_default="")
    role = fields.String(load_default="")
    organisation = fields.String(load_default="")
    #: Optional (old adapters ignore it): how the child's worker can reach the requester.
    email = fields.String(load_default=None, allow_none=True,
                          validate=validate.Length(max=254))


class WireRequest(Schema):
    class Meta:
        unknown = EXCLUDE

    lookup_id = fields.String(required=True)
    child = fields.Nested(WireChild, required=True)
    basis = fields.Dict(required=True)
    purpose = fields.String(required=True)
    requester = fields.Nested(WireRequester, required=True)
    include_past = fields.Boolean(load_default=False)


class WireAnswer(Schema):
    class Meta:
        unknown = EXCLUDE

    lookup_id = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    confidence = fields.Float(load_default=None, allow_none=True,
                              validate=validate.Range(min=0.0, max=1.0))
    professionals = fields.List(fields.Dict(), load_default=list)
    notice = fields.String(load_default=None, allow_none=True,
                           validate=validate.Length(max=2000))
    # Optional (older adapters send none of them; absent stays absent):
    #: On a match: an opaque, stable reference to the matched record (the kit:
    #: HMAC-SHA256 of its own record id, base64url). Dropped on any other status.
    record_ref = fields.String(allow_none=True, validate=[
        validate.Length(min=1, max=128), validate.Regexp(r"^[A-Za-z0-9_.~=+/-]+\Z")])
    #: On a match or a possible one: the details that agreed.
    matched_on = fields.List(fields.String(validate=validate.OneOf(MATCH_FIELDS)),
                             allow_none=True, validate=validate.Length(max=len(MATCH_FIELDS)))
    #: On a possible match (no_match with its notice): the details that would settle it.
    ask_for = fields.List(fields.String(validate=validate.OneOf(MATCH_FIELDS)),
                          allow_none=True, validate=validate.Length(max=len(MATCH_FIELDS)))

    @post_load
    def _record_ref_on_a_match_only(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        if data.get("status") != "match":
            data.pop("record_ref", None)
        return data


class InvalidAnswer(ValueError):
    """The adapter's answer does not follow the protocol."""


# Built once: constructing a marshmallow Schema costs more than loading a small
# answer with it (about 110 us against 55 us), and ``load`` keeps no state on the
# instance, so one of each serves every thread.
_ANSWER = WireAnswer()
_PROFESSIONAL = WireProfessional()


def bare_answer(data: Mapping[str, Any]) -> dict[str, Any] | None:
    """What ``WireAnswer`` loads from an answer holding only a lookup id and a valid
    status (most authorities' answer to most lookups: ``no_match``), worked out
    without the schema (a fifth of its cost); None for any other answer, which the
    schema reads. tests/unit/test_wire_bare_answer.py holds it to the schema."""
    if len(data) != 2:
        return None
    lookup_id, status = data.get("lookup_id"), data.get("status")
    if type(lookup_id) is not str or type(status) is not str or status not in STATUSES:
        return None
    return {"lookup_id": lookup_id, "status": status, "confidence": None,
            "professionals": [], "notice": None}


def parse_answer(raw: bytes, lookup_id: str, *,
                 max_professionals: int = MAX_PROFESSIONALS) -> dict[str, Any]:
    """Parse and validate an adapter's answer.

    Unknown fields are dropped; a professional that cannot be shown (no name, no
    way to reach them, or a field that is not what it claims: an e-mail that is
    not a plain address, a phone number with other characters, a date that is
    not ISO) is left out rather than failing the whole answer, and so is every
    professional after the first ``max_professionals`` (never even read).
    ``left_out`` counts them by reason (field names, never values); see
    :func:`left_out_detail`.
    """
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidAnswer("answer is not JSON") from e
    if not isinstance(data, dict):
        raise InvalidAnswer("answer is not a JSON object")
    left_out: dict[str, int] = {}
    items = data.get("professionals")
    if isinstance(items, list) and len(items) > max_professionals:
        # Bounded work: the rest are not validated, only counted.
        left_out[f"more than {max_professionals} in one answer"] = (
            len(items) - max_professionals)
        data = {**data, "professionals": items[:max_professionals]}
    answer = bare_answer(data)
    if answer is None:
        try:
            answer = _ANSWER.load(data)
        except ValidationError as e:
            raise InvalidAnswer(f"invalid answer: {sorted(e.messages)}") from e
    if answer["lookup_id"] != lookup_id:
        raise InvalidAnswer("answer is for another lookup")
    people = []
    for item in answer["professionals"]:
        reason = None
        try:
            person = _PROFESSIONAL.load(item)
        except ValidationError as e:
            fields_ = e.messages if isinstance(e.messages, dict) else {}
            reason = "invalid " + ", ".join(sorted(str(f) for f in fields_) or ["fields"])
        else:
            if not person["name"].strip():
                reason = "no name"
            elif not (person.get("phone") or person.get("email")):
                reason = "no phone or e-mail"
        if reason is not None:
            left_out[reason] = left_out.get(reason, 0) + 1
            continue
        person["from"] = person.pop("from_")
        people.append(person)
    answer["professionals"] = people if answer["status"] == "match" else []
    if left_out and answer["status"] == "match":
        answer["left_out"] = left_out
    return answer


def left_out_detail(left_out: Mapping[str, int] | None) -> str | None:
    """``{"invalid email": 2}`` -> ``"2 professionals left out: invalid email (2)"``."""
    if not left_out:
        return None
    total = sum(left_out.values())
    reasons = "; ".join(f"{reason} ({count})" for reason, count in sorted(left_out.items()))
    return f"{total} professional{'s' if total != 1 else ''} left out: {reasons}"


# --------------------------------------------------------------------------
# Signing
# --------------------------------------------------------------------------


def body_hash(body: bytes) -> str:
    """base64url (unpadded) SHA-256 of the exact body bytes: the ``bh`` claim."""
    return base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b"=").decode()


def encode_body(payload: Mapping[str, Any]) -> bytes:
    if isinstance(payload, WirePayload):
        return payload.body
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


class WirePayload(dict[str, Any]):
    """A lookup's request body, encoded once however many authorities it goes to
    (every ``federator-lookup/1`` authority gets the same bytes; only the signed
    token differs). Not to be changed once sent."""

    @cached_property
    def body(self) -> bytes:
        return json.dumps(self, separators=(",", ":"), ensure_ascii=False).encode()


def generate_signing_key(kid: str | None = None) -> ECKey:
    kid = kid or uuid.uuid4().hex[:16]
    return ECKey.generate_key(
        "P-256", parameters={"kid": kid, "use": "sig", "alg": "ES256"}, private=True
    )


def sign_request(
    body: bytes, key: ECKey, *, issuer: str, audience: str, lifetime_s: int = 60,
    now: float | None = None,
) -> str:
    """Bearer token for one request to one authority."""
    issued = int(now if now is not None else time.time())
    claims = {
        "iss": issuer,
        "aud": audience,
        "iat": issued,
        "exp": issued + min(lifetime_s, MAX_TOKEN_LIFETIME_S),
        "jti": uuid.uuid4().hex,
        "bh": body_hash(body),
    }
    return es256_compact({"alg": "ES256", "kid": key.kid, "typ": "JWT"}, claims, key)


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


#: Made once: ``json.dumps`` with ``separators`` builds a new encoder on every call
#: (a third of a token's Python), and an ``ECDSA`` is immutable.
_COMPACT = json.JSONEncoder(separators=(",", ":"))
_ES256 = ec.ECDSA(hashes.SHA256())


@functools.lru_cache(maxsize=64)
def _header_segment(header_json: str) -> bytes:
    """A JWS header's segment; the header is the same for every call with one key."""
    return _b64(header_json.encode())


def es256_compact(header: Mapping[str, Any], claims: Mapping[str, Any], key: ECKey) -> str:
    """A compact JWS (RFC 7515) signed with ES256: the signature is R || S, 32
    bytes each (RFC 7518 section 3.4), made with ``cryptography`` directly.

    The broker signs once per authority per lookup (150 at a national fan-out);
    ``joserfc.jwt.encode`` spends about 170 us on one token against 60 us for the
    signature itself. Verification stays with joserfc (``verify_request``), which
    is what checks these tokens in the adapter kit and in the protocol tests."""
    private = key.private_key
    if not isinstance(private, ec.EllipticCurvePrivateKey) or private.curve.name != "secp256r1":
        raise ValueError("ES256 needs a private P-256 key")
    signing_input = (_header_segment(_COMPACT.encode(header)) + b"."
                     + _b64(_COMPACT.encode(claims).encode()))
    r, s = decode_dss_signature(private.sign(signing_input, _ES256))
    return (signing_input + b"." + _b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))).decode()


class RequestRefused(Exception):
    """The adapter must refuse this request with 401; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class VerifiedRequest:
    issuer: str
    jti: str
    expires: int


def verify_request(
    authorization: str | None,
    body: bytes,
    *,
    keys: Callable[[str | None], KeySet],
    audience: str,
    issuer: str | None = None,
    seen_before: Callable[[str, int], bool],
    now: float | None = None,
    leeway_s: int = 5,
) -> VerifiedRequest:
    """Check a signed request as DESIGN.md says.

    ``keys(kid)`` returns the broker's key set (it may refresh on an unknown
    kid); ``seen_before(jti, exp)`` records the jti and says whether it was
    already used. Raises :class:`RequestRefused`.
    """
    if not authorization or not authorization.startswith("Bearer "):
        raise RequestRefused("missing bearer token")
    token = authorization[len("Bearer "):].strip()
    try:
        header = json.loads(base64.urlsafe_b64decode(_pad(token.split(".")[0])))
        kid = header.get("kid") if isinstance(header, dict) else None
        decoded = jwt.decode(token, keys(kid), algorithms=["ES256"])
    except (JoseError, ValueError, IndexError, KeyError) as e:
        raise RequestRefused("bad signature") from e
    claims = decoded.claims
    current = int(now if now is not None else time.time())
    for name in ("iss", "aud", "iat", "exp", "jti", "bh"):
        if name not in claims:
            raise RequestRefused(f"missing claim {name}")
    try:
        exp, iat = int(claims["exp"]), int(claims["iat"])
    except (TypeError, ValueError) as e:
        raise RequestRefused("bad time claims") from e
    if claims["aud"] != audience and not (
        isinstance(claims["aud"], list) and audience in claims["aud"]
    ):
        raise RequestRefused("wrong audience")
    if issuer is not None and claims["iss"] != issuer:
        raise RequestRefused("wrong issuer")
    if exp < current - leeway_s:
        raise RequestRefused("token expired")
    if iat > current + leeway_s or exp - iat > MAX_TOKEN_LIFETIME_S:
        raise RequestRefused("token lifetime not allowed")
    if claims["bh"] != body_hash(body):
        raise RequestRefused("body hash mismatch")
    if seen_before(str(claims["jti"]), exp):
        raise RequestRefused("replayed request")
    return VerifiedRequest(issuer=str(claims["iss"]), jti=str(claims["jti"]), expires=exp)


def _pad(segment: str) -> bytes:
    return (segment + "=" * (-len(segment) % 4)).encode()


def public_jwks(keys: list[ECKey]) -> dict[str, Any]:
    return {"keys": [k.as_dict(private=False) for k in keys]}


#: The request header carrying the broker's latest signed audit checkpoint (JWS
#: compact), which the authority witnesses (docs/protocol.md, "Witnessed
#: checkpoints"). Outside the body: the body and its ``bh`` hash are unchanged.
CHECKPOINT_HEADER = "Federator-Checkpoint"
