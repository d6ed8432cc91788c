"""Free text in the trail that an auditor can redact without breaking verification.

**Record format 2** (written from migration ``0011_audit_retention`` on): the
free text a record holds (``SEALED_FIELDS``: the purpose, a safeguarding
justification, a consent or statutory reference) is not in the hashed body.
The body holds, under ``sealed``, each text's salted hash
(``sha256(salt "\\n" text)``, ``commitment``), and the text with its salt is kept
beside it in ``audit_records.texts``. The chain and the Merkle leaf cover the
hash, so the text and its salt can go (redaction) and the record still verifies;
while the text is there, verification checks it against the hash, so it cannot
be changed. The salt (128 random bits) keeps a short text from being guessed
from its hash once the text is gone.

Format 1 records (before 0009) hold their text in the body: it is covered by the
hash and can go only with the whole body, by pruning (``federator.audit.retention``).

A redaction replaces the field's entry in ``texts`` with ``{"redacted": R}``, R
the ``audit.redacted`` record (written first) that names the record, the field,
who and why. The database lets an UPDATE of ``texts`` through only in that shape
(0009's triggers); ``verify`` checks each marker against its record.

Pure functions first (``seal``, ``open_record``, ``sealed_body``, ``check_texts``);
``redact`` writes.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from typing import Any

#: The free text sealed in a record, as dotted paths into it.
SEALED_FIELDS = ("purpose", "justification", "basis.justification", "basis.reference")
#: Keys a reader's view of a record gets that the hashed body does not hold.
VIEW_KEYS = ("prev_hash", "hash", "salts", "redacted", "redactions", "pruned")


def commitment(salt: str, text: str) -> str:
    """The salted hash a format 2 record holds for a text: SHA-256 over the UTF-8 of
    ``salt "\n" text`` (the salt is hex, so ASCII), in hex."""
    return hashlib.sha256(f"{salt}\n{text}".encode()).hexdigest()


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _split(path: str) -> tuple[str | None, str]:
    head, _, key = path.rpartition(".")
    return (head or None), key


def seal(record: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The record to hash (its free text replaced by ``sealed`` hashes) and the
    ``texts`` column (None when it holds no free text). ``record`` is not changed."""
    out = dict(record)
    sealed: dict[str, str] = {}
    texts: dict[str, dict[str, str]] = {}
    for path in SEALED_FIELDS:
        head, key = _split(path)
        if head is None:
            parent: Any = out
        else:
            if not isinstance(out.get(head), Mapping):
                continue
            parent = out[head] = dict(out[head])
        if not isinstance(parent.get(key), str):
            continue
        text = parent.pop(key)
        salt = secrets.token_hex(16)
        sealed[path] = commitment(salt, text)
        texts[path] = {"salt": salt, "text": text}
    if not sealed:
        return out, None
    out["sealed"] = sealed
    return out, _dumps(texts)


def open_record(body: Mapping[str, Any], texts: str | None) -> dict[str, Any]:
    """A reader's view: each sealed text back in its place (None once redacted,
    with ``redacted`` = {field: the audit.redacted record's seq}), and the salts
    (``salts``) that let anyone holding the view check the text against the hash."""
    out = dict(body)
    sealed = body.get("sealed")
    if not isinstance(sealed, Mapping):
        return out
    try:
        held = json.loads(texts) if texts else {}
    except ValueError:
        held = {}
    held = held if isinstance(held, dict) else {}
    salts: dict[str, str] = {}
    redacted: dict[str, Any] = {}
    for path in sealed:
        head, key = _split(path)
        if head is None:
            parent: Any = out
        else:
            parent = out[head] = dict(out[head]) if isinstance(out.get(head), Mapping) else {}
        entry = held.get(path)
        entry = entry if isinstance(entry, dict) else {}
        parent[key] = entry.get("text") if isinstance(entry.get("text"), str) else None
        if isinstance(entry.get("salt"), str) and parent[key] is not None:
            salts[path] = entry["salt"]
        if "redacted" in entry:
            redacted[path] = entry["redacted"]
    if salts:
        out["salts"] = salts
    if redacted:
        out["redacted"] = redacted
    return out


def sealed_body(view: Mapping[str, Any]) -> dict[str, Any]:
    """Back from a reader's view (``open_record``) to the body as hashed."""
    sealed = view.get("sealed")
    if not isinstance(sealed, Mapping):  # format 1, or no free text: the body as it is
        return {k: v for k, v in view.items() if k not in ("prev_hash", "hash")}
    out = {k: v for k, v in view.items() if k not in VIEW_KEYS}
    if isinstance(sealed, Mapping):
        for path in sealed:
            head, key = _split(path)
            if head is None:
                out.pop(key, None)
            elif isinstance(out.get(head), Mapping):
                out[head] = {k: v for k, v in out[head].items() if k != key}
    return out


def texts_of_view(view: Mapping[str, Any]) -> str | None:
    """The ``texts`` column again from a reader's view (an export's record)."""
    sealed = view.get("sealed")
    if not isinstance(sealed, Mapping):
        return None
    salts = view.get("salts") or {}
    redacted = view.get("redacted") or {}
    texts: dict[str, Any] = {}
    for path in sealed:
        head, key = _split(path)
        parent = view if head is None else view.get(head) or {}
        if path in redacted:
            texts[path] = {"redacted": redacted[path]}
        elif isinstance(parent, Mapping) and isinstance(parent.get(key), str) and path in salts:
            texts[path] = {"salt": salts[path], "text": parent[key]}
    return _dumps(texts)


def check_texts(body: Mapping[str, Any], texts: str | None
                ) -> tuple[str | None, list[tuple[int, str]]]:
    """Whether the texts beside a record are what it sealed: (what is wrong, or
    None; the redactions it claims, as (audit.redacted record, field))."""
    sealed = body.get("sealed")
    if sealed is None:
        return (None if texts is None else "free text is stored beside a record that "
                "seals none"), []
    if not isinstance(sealed, Mapping):
        return "its sealed hashes are not readable", []
    try:
        held = json.loads(texts) if texts else {}
    except ValueError:
        return "its free text is not readable", []
    if not isinstance(held, dict):
        return "its free text is not readable", []
    claims: list[tuple[int, str]] = []
    for path, digest in sealed.items():
        entry = held.get(path)
        if entry.__class__ is not dict:
            return f"the text of {path} is gone, but not through a redaction", []
        text = entry.get("text")
        if text is not None:
            salt = entry.get("salt")
            if not (salt.__class__ is str and text.__class__ is str
                    and hashlib.sha256(f"{salt}\n{text}".encode()).hexdigest() == digest):
                return f"the text of {path} does not match its sealed hash", []
        elif entry.get("redacted").__class__ is int:
            claims.append((entry["redacted"], path))
        else:
            return f"the text of {path} is gone, but not through a redaction", []
    if len(held) != len(sealed):
        extra = sorted(set(held) - set(sealed))
        return f"free text for {extra[0]} is stored, but the record does not seal it", []
    return None, claims


def redactable(view: Mapping[str, Any]) -> list[str]:
    """The fields of a record (a reader's view) that can still be redacted."""
    sealed = view.get("sealed")
    if not isinstance(sealed, Mapping):
        return []
    redacted = view.get("redacted") or {}
    return [p for p in SEALED_FIELDS if p in sealed and p not in redacted
            and p in (view.get("salts") or {})]
