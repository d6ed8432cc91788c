"""Queued entries the integrator cannot make a record of, found before they are
tried (pure; ``federator.audit.batching`` does the I/O).

The broker's own writers queue only what ``queue_writer.encode`` made of an
append's fields, a NUL refused first. Anything else in ``audit_queue`` (a row an
insider wrote there, a bug, a broker of another version) is checked here. An
entry that cannot become a record would otherwise fail every integrator's batch
for ever: the trail would stop growing behind it while lookups went on queueing,
every auditor's read would fail, and no checkpoint would cover anything new. So
such an entry is rejected instead: its raw row is moved, whole, to
``audit_queue_rejected``, and an ``audit.entry_rejected`` record takes its place
in the chain, flagged ``entry_rejected`` (an alert), saying which queue row,
the hash of its fields, and why, in fixed words that name the field and never
quote it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from federator.audit.chain import INDEXED
from federator.audit.queue_writer import holds_nul
from federator.names import AUDIT_ENTRY_REJECTED
from federator.storage import audit_records

#: What an event name looks like (``lookup.requested``, ``audit.review.noted``):
#: checked by shape, not against this version's list, so that an event of a newer
#: broker, integrated by an older one during an upgrade, is not rejected.
_EVENT = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
#: Keys the integrator sets (``seq``, ``at``, ``event``) or readers add to a record's
#: view (``federator.audit.redaction.VIEW_KEYS``, and ``sealed``): an entry's fields
#: may not bring their own.
RESERVED = ("seq", "at", "event", "prev_hash", "hash", "sealed", "salts", "redacted",
            "redactions", "pruned")
#: The filter columns' lengths: a longer value would fail the batch's insert.
LENGTHS = {c: getattr(audit_records.c[c].type, "length", None) for c in INDEXED}
FLAG = "entry_rejected"


@dataclass(frozen=True)
class Rejected:
    reason: str


def decode(at: str, event: str, fields: str) -> dict[str, Any] | Rejected:
    """The record (without its ``seq``) a queued entry becomes, or why it cannot."""
    if not isinstance(event, str) or not _EVENT.fullmatch(event):
        return Rejected("event: not an event name")
    if event == AUDIT_ENTRY_REJECTED:
        return Rejected("event: only the integrator writes audit.entry_rejected")
    if not _is_time(at):
        return Rejected("at: not a time with its offset (ISO 8601)")
    if holds_nul(fields):
        return Rejected("fields: hold a NUL character")
    try:
        loaded = json.loads(fields)
    except (TypeError, ValueError):
        return Rejected("fields: not JSON")
    if not isinstance(loaded, dict):
        return Rejected("fields: not a JSON object")
    for key in RESERVED:
        if key in loaded:
            return Rejected(f"fields.{key}: set by the integrator, not by an entry")
    for key in INDEXED:
        value = loaded.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            return Rejected(f"fields.{key}: not text")
        if (limit := LENGTHS[key]) is not None and len(value) > limit:
            return Rejected(f"fields.{key}: longer than {limit} characters")
    flags = loaded.get("flags")
    if flags is not None and not (isinstance(flags, list) and all(
            isinstance(f, dict) and isinstance(f.get("flag"), str) for f in flags)):
        return Rejected("fields.flags: not a list of flags")
    return {"at": at, "event": event, **loaded}


def rejection(queue_id: int, at: str, event: str, fields: str, reason: str,
              now: str) -> dict[str, Any]:
    """The ``audit.entry_rejected`` record (without its ``seq``) written in the
    place of queue row ``queue_id``: what was queued, by its hash, never its text."""
    raw = fields.encode("utf-8", "surrogatepass") if isinstance(fields, str) else b""
    return {
        "at": now, "event": AUDIT_ENTRY_REJECTED, "queue_id": queue_id,
        "queued_event": event if isinstance(event, str) and _EVENT.fullmatch(event) else None,
        "queued_at": at if _is_time(at) else None,
        "fields_sha256": hashlib.sha256(raw).hexdigest(), "reason": reason,
        "flags": [{"flag": FLAG, "reason": (
            f"Queue entry {queue_id} could not become a record ({reason}); its row is "
            "kept in audit_queue_rejected")}]}


def _is_time(at: Any) -> bool:
    if not isinstance(at, str):
        return False
    try:
        return datetime.fromisoformat(at).tzinfo is not None
    except ValueError:
        return False
