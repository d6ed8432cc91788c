"""Signed checkpoints: the broker's statement of the trail at a size.

A checkpoint says "the trail had ``tree_size`` records, its RFC 9162 Merkle
root over the records' canonical bodies was ``root_hash``, and record
``tree_size`` had the chain hash ``head_hash``", signed (JWS compact, ES256)
with the broker's key, its ``kid`` in the protected header. Anyone with the
broker's public keys (``/.well-known/jwks.json``) can check one; with it the
chain's cut tail and a wholesale rewrite become visible, and inclusion and
consistency proofs (``federator.audit.merkle``) hang off its root.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet

TYPE = "federator-checkpoint+jws"


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
    """Verify the signature with the broker's public keys; the claims, or BadCheckpoint."""
    try:
        header = jws.extract_compact(token.encode()).protected
        keys = KeySet.import_key_set(dict(jwks))
        kid = header.get("kid")
        if header.get("typ") != TYPE or not any(k.kid == kid for k in keys.keys):
            raise BadCheckpoint(f"checkpoint signed with an unknown key ({kid})")
        opened = jws.deserialize_compact(token, keys, algorithms=["ES256"])
        claims = json.loads(opened.payload)
        return Checkpoint(log=str(claims["log"]), tree_size=int(claims["tree_size"]),
                          root_hash=str(claims["root_hash"]),
                          head_hash=str(claims["head_hash"]), at=str(claims["at"]),
                          kid=str(kid), signed=token)
    except BadCheckpoint:
        raise
    except (JoseError, ValueError, KeyError, TypeError) as e:
        raise BadCheckpoint("checkpoint signature does not verify") from e
