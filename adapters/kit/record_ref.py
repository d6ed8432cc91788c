"""``record_ref``: an opaque reference to the record a lookup matched, stable
per authority, so the broker's trail can follow the child rather than the
string typed. HMAC-SHA256 of the record's ``child_ref`` keyed with the kit's
``record_ref_key``, base64url without padding (43 characters): the same
record gives the same reference at every lookup, and nobody without the key
can tell which record it is (it is never the id itself)."""

from __future__ import annotations

import base64
import hashlib
import hmac

#: The label of the development key derived from the authority id (not secret).
DEV_KEY_LABEL = b"federator-kit development record_ref key"


def development_key(authority_id: str) -> bytes:
    """A key for development when none is set: anyone who knows the authority
    id can compute it, so references are not secret (the kit warns)."""
    return hmac.new(DEV_KEY_LABEL, authority_id.encode(), hashlib.sha256).digest()


def record_ref(key: bytes, child_ref: str) -> str:
    digest = hmac.new(key, child_ref.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
