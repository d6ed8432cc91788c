"""Keyed pseudonym of a child's identity: HMAC-SHA256 under the audit key."""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from collections.abc import Mapping
from typing import Any


def normalise_name(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"[^\w]+", "", letters)


def child_pseudonym(child: Mapping[str, Any], audit_key: str) -> str:
    """Of the NHS number when there is one, else of name + date of birth."""
    nhs = re.sub(r"\s+", "", str(child.get("nhs_number") or ""))
    if nhs:
        material = f"nhs:{nhs}"
    else:
        material = "name_dob:{}|{}|{}".format(
            normalise_name(str(child.get("given_name") or "")),
            normalise_name(str(child.get("family_name") or "")),
            str(child.get("date_of_birth") or ""),
        )
    return hmac.new(audit_key.encode(), material.encode(), hashlib.sha256).hexdigest()
