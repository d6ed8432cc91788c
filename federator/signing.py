"""The broker's signing keys (ES256): sign requests to adapters, publish the JWKS,
rotate.

The key file (``FEDERATOR_SIGNING_KEY_FILE``, mode 0600) holds a key ring::

    {"keys": [{"jwk": {...private JWK...}, "created_at": 1760000000,
               "retires_at": null}, ...]}

(an older file holding one bare private JWK is read as a ring of one). Signing
uses the newest key; the JWKS publishes every key not yet retired, so after
``federator keys rotate`` adapters see both the new key and the old one until
the old one retires after the configured overlap. A retired key keeps only its
public half in the file; ``history_jwks`` publishes every key with its validity
window (``/.well-known/federator-keys.json``), so what a key signed while it was
valid still verifies after any rotation, ``--overlap 0`` included.
Broker processes notice a rotation by the file's modification time, at most
once a second, so every worker switches without a restart.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc.jwk import ECKey

from adapters.protocol import generate_signing_key, public_jwks, sign_request

RELOAD_EVERY_S = 1.0


@dataclass(frozen=True)
class RingKey:
    key: ECKey
    created_at: float
    retires_at: float | None
    private: bool

    def live(self, now: float) -> bool:
        return self.retires_at is None or self.retires_at > now


def read_ring(path: Path) -> list[RingKey]:
    data = json.loads(path.read_text())
    if isinstance(data, dict) and "keys" in data:
        entries = data["keys"]
    else:  # one bare private JWK, as written before key rotation existed
        entries = [{"jwk": data, "created_at": 0, "retires_at": None}]
    ring = []
    for entry in entries:
        jwk = entry["jwk"]
        ring.append(RingKey(ECKey.import_key(jwk), float(entry.get("created_at") or 0),
                            entry.get("retires_at"), "d" in jwk))
    return sorted(ring, key=lambda k: k.created_at)


def _written(path: Path, ring: list[RingKey]) -> str:
    """The ring in a new file beside ``path`` (mode 0600, flushed to disk): its name."""
    data = {"keys": [{"jwk": k.key.as_dict(private=k.private), "created_at": k.created_at,
                      "retires_at": k.retires_at} for k in ring]}
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp: a new file (O_EXCL, mode 0600) at an unguessable name, so nothing
    # planted beside the ring (a readable file, a symlink) receives the key (issue 22)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def write_ring(path: Path, ring: list[RingKey]) -> None:
    """Write atomically (a new file, mode 0600, renamed over the old one)."""
    tmp = _written(path, ring)
    try:
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def rotated(ring: list[RingKey], *, now: float, overlap_s: float,
            new_key: ECKey | None = None) -> list[RingKey]:
    """The ring after a rotation (pure): a new newest key; each live older key
    retires ``overlap_s`` from now; keys already retired keep only their public half."""
    out = []
    for k in ring:
        if not k.live(now):
            out.append(RingKey(k.key, k.created_at, k.retires_at, private=False))
        elif k.retires_at is None:
            out.append(RingKey(k.key, k.created_at, now + overlap_s, k.private))
        else:
            out.append(k)
    created = max([now, *(k.created_at + 1e-3 for k in ring)])
    out.append(RingKey(new_key or generate_signing_key(), created, None, True))
    return out


def init_ring(path: Path, *, now: float | None = None) -> RingKey:
    """Write a ring of one new key to ``path`` (mode 0600); ``FileExistsError`` when
    the file exists (a ring is never overwritten: rotate it instead)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    key = RingKey(generate_signing_key(), time.time() if now is None else now, None, True)
    # The whole ring is written first, then linked in under its name: a link never
    # replaces a file (two operators, or a retry, racing cannot both write a first
    # key), and an init killed part-way leaves no empty ring behind to be refused.
    tmp = _written(path, [key])
    try:
        os.link(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return key


def rotate(path: Path, *, overlap_s: float, now: float | None = None) -> RingKey:
    """Add a new signing key to the ring in ``path``; returns it."""
    ring = read_ring(path)
    new = rotated(ring, now=time.time() if now is None else now, overlap_s=overlap_s)
    write_ring(path, new)
    return new[-1]


class BrokerKeys:
    def __init__(self, ring: list[RingKey], issuer: str, *, path: Path | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        if not any(k.private for k in ring):
            raise ValueError("the signing key file holds no private key")
        self.issuer = issuer
        self.path = path
        self._clock = clock
        self._ring = ring
        self._lock = threading.Lock()
        self._mtime = path.stat().st_mtime_ns if path else 0
        self._checked = clock()

    @classmethod
    def load(cls, path: Path, issuer: str, *, create: bool) -> BrokerKeys:
        """Read the key ring; in development create one (mode 0600) when absent."""
        if not path.exists():
            if not create:
                raise FileNotFoundError(f"signing key file {path} does not exist")
            write_ring(path, [RingKey(generate_signing_key(), time.time(), None, True)])
        return cls(read_ring(path), issuer, path=path)

    def _current(self) -> list[RingKey]:
        now = self._clock()
        if self.path is not None and now - self._checked >= RELOAD_EVERY_S:
            with self._lock:
                self._checked = now
                try:
                    mtime = self.path.stat().st_mtime_ns
                    if mtime != self._mtime:
                        ring = read_ring(self.path)
                        if any(k.private for k in ring):
                            self._ring, self._mtime = ring, mtime
                except (OSError, ValueError, KeyError):
                    pass  # keep signing with the keys we have
        return self._ring

    @property
    def key(self) -> ECKey:
        """The key that signs now: the newest private key."""
        return [k for k in self._current() if k.private][-1].key

    def sign(self, body: bytes, audience: str) -> str:
        return sign_request(body, self.key, issuer=self.issuer, audience=audience)

    def jwks(self) -> dict[str, Any]:
        """Every key not yet retired: what adapters verify against."""
        now = self._clock()
        return public_jwks([k.key for k in self._current() if k.live(now)])

    def history_jwks(self) -> dict[str, Any]:
        """Every key the ring remembers, retired ones included, each with its window
        (published at ``/.well-known/federator-keys.json``): what checks old signed
        checkpoints, never requests (``jwks`` is for those)."""
        return history_document(self._current(), self._clock())


def history_document(ring: list[RingKey], now: float) -> dict[str, Any]:
    """Every key of ``ring`` as a public JWK with ``created_at``, ``retires_at``
    (epoch seconds; null: not retired) and ``status``: ``current`` (signs now),
    ``retiring`` (still accepted on requests until ``retires_at``) or ``retired``
    (only for checking what it signed within its window). Pure."""
    signing = [k for k in ring if k.private]
    newest = signing[-1].key.kid if signing else None
    keys = []
    for k in ring:
        status = ("current" if k.key.kid == newest and k.live(now)
                  else "retiring" if k.live(now) else "retired")
        keys.append({**k.key.as_dict(private=False), "created_at": k.created_at,
                     "retires_at": k.retires_at, "status": status})
    return {"keys": keys}
