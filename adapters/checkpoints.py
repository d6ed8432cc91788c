"""Signed checkpoints: the broker's statement of the trail at a size.

A checkpoint says "the trail had ``tree_size`` records, its RFC 9162 Merkle
root over the records' canonical bodies was ``root_hash``, and record
``tree_size`` had the chain hash ``head_hash``", signed (JWS compact, ES256)
with the broker's key, its ``kid`` in the protected header. Anyone with the
broker's public keys can check one; with it the chain's cut tail and a
wholesale rewrite become visible, and inclusion and consistency proofs
(:mod:`adapters.merkle`) hang off its root.

Here, in ``adapters``, because the adapter kit witnesses checkpoints (it
checks the one every lookup carries) and ``adapters`` never imports
``federator``; the broker's side re-exports it as ``federator.audit.checkpoints``.

Key windows: the broker publishes every key it ever signed with
(``/.well-known/federator-keys.json``), each with ``created_at`` and
``retires_at`` (seconds since the epoch; ``null``: not retired) beside the JWK
members. A checkpoint whose ``at`` lies outside its key's window (give or take
``WINDOW_LEEWAY_S``) is refused, naming the key: a retired key, leaked or not,
cannot vouch for a trail it never saw. A JWKS without those members (the plain
``/.well-known/jwks.json``) is checked by signature alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet

TYPE = "federator-checkpoint+jws"
#: Seconds a key's window is widened by at each end: broker processes notice a
#: rotated key file within a second, and hosts' clocks differ a little.
WINDOW_LEEWAY_S = 120
_PRIVATE = {"d", "p", "q", "dp", "dq", "qi", "k"}


class BadCheckpoint(ValueError):
    """The signature or the claims of a checkpoint do not hold."""


@dataclass(frozen=True)
class Checkpoint:
    log: str
    tree_size: int
    root_hash: str
    head_hash: str
    at: str
    kid: str = ""
    signed: str = ""

    def claims(self) -> dict[str, Any]:
        return {"log": self.log, "tree_size": self.tree_size, "root_hash": self.root_hash,
                "head_hash": self.head_hash, "at": self.at}

    def public(self) -> dict[str, Any]:
        return {**self.claims(), "kid": self.kid, "signed": self.signed}


def sign_checkpoint(checkpoint: Checkpoint, key: ECKey) -> Checkpoint:
    payload = json.dumps(checkpoint.claims(), sort_keys=True, separators=(",", ":")).encode()
    kid = str(key.kid)
    token = jws.serialize_compact({"alg": "ES256", "kid": kid, "typ": TYPE}, payload, key)
    return Checkpoint(**checkpoint.claims(), kid=kid, signed=token)


def open_checkpoint(token: str, jwks: Mapping[str, Any]) -> Checkpoint:
    """Verify the signature with the broker's public keys, and the signing time
    against the key's window when the JWKS gives one; the claims, or BadCheckpoint."""
    try:
        header = jws.extract_compact(token.encode()).protected
        kid = header.get("kid")
        entries = [k for k in jwks.get("keys") or [] if isinstance(k, Mapping)]
        if header.get("typ") != TYPE or not any(k.get("kid") == kid for k in entries):
            raise BadCheckpoint(f"checkpoint signed with an unknown key ({kid})")
        keys = KeySet.import_key_set({"keys": [
            {m: v for m, v in k.items() if m not in _PRIVATE} for k in entries]})
        opened = jws.deserialize_compact(token, keys, algorithms=["ES256"])
        claims = json.loads(opened.payload)
        checkpoint = Checkpoint(log=str(claims["log"]), tree_size=int(claims["tree_size"]),
                                root_hash=str(claims["root_hash"]),
                                head_hash=str(claims["head_hash"]), at=str(claims["at"]),
                                kid=str(kid), signed=token)
    except BadCheckpoint:
        raise
    except (JoseError, ValueError, KeyError, TypeError) as e:
        raise BadCheckpoint("checkpoint signature does not verify") from e
    entry = next(k for k in entries if k.get("kid") == kid)
    problem = window_problem(checkpoint, entry)
    if problem:
        raise BadCheckpoint(problem)
    return checkpoint


def window_problem(checkpoint: Checkpoint, jwk: Mapping[str, Any]) -> str | None:
    """Why the key ``jwk`` could not have signed ``checkpoint`` when it says, or None."""
    if "created_at" not in jwk and "retires_at" not in jwk:
        return None
    try:
        at = datetime.fromisoformat(checkpoint.at).timestamp()
        start = float(jwk.get("created_at") or 0)
        end = None if jwk.get("retires_at") is None else float(jwk["retires_at"])
    except (TypeError, ValueError):
        return f"checkpoint time {checkpoint.at!r} or the window of key {checkpoint.kid} " \
               "is not readable"
    if at < start - WINDOW_LEEWAY_S or (end is not None and at > end + WINDOW_LEEWAY_S):
        return (f"checkpoint signed at {checkpoint.at} with key {checkpoint.kid}, outside "
                f"its validity window ({_utc(start)} to "
                f"{_utc(end) if end is not None else 'now'})")
    return None


def _utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def read_checkpoint(text: str) -> str:
    """The JWS compact token in a checkpoint as people keep one: the JSON the
    broker and the kit print (``{"signed": ...}``, as ``federator audit export``
    writes and ``federator-adapter witness show`` prints), a JSON string, or the
    bare token (an auditor's mail). ValueError when it is none of those."""
    stripped = text.strip()
    value: Any = stripped
    if stripped.startswith(("{", '"')):
        try:
            value = json.loads(stripped)
        except ValueError as e:
            raise ValueError("not JSON, though it starts like JSON") from e
        if isinstance(value, Mapping):  # a checkpoint, or a record's answer holding one
            inner = value.get("checkpoint")
            value = value.get("signed") or (
                inner.get("signed") if isinstance(inner, Mapping) else None)
    if not isinstance(value, str) or value.count(".") != 2:
        raise ValueError("no signed checkpoint (a JWS compact token, or JSON with 'signed')")
    return value
