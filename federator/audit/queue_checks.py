"""Queued entries the integrator cannot make a record of, found before they are
tried (pure; ``federator.audit.batching`` does the I/O).

The broker's own writers queue only what ``queue_writer.encode`` made of an
append's fields, after the same checks (``problem``: an entry that would be
rejected is refused before it is queued). Anything else in ``audit_queue`` (a
row an insider wrote there, a bug, a broker of another version) is checked here.
An entry that cannot become a record would otherwise fail every integrator's
batch for ever: the trail would stop growing behind it while lookups went on
queueing, every auditor's read would fail, and no checkpoint would cover
anything new. So such an entry is rejected instead: its raw row is moved, whole,
to ``audit_queue_rejected``, and an ``audit.entry_rejected`` record takes its
place in the chain, flagged ``entry_rejected`` (an alert), saying which queue
row, the hash of its fields, and why, in fixed words that name the field and
never quote it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from federator.audit.chain import INDEXED
from federator.audit.queue_writer import holds_nul
from federator.audit.tables import audit_flags
from federator.names import AUDIT_ENTRY_REJECTED, AUDIT_PRUNED, AUDIT_REDACTED
from federator.storage import audit_records

#: What an event name looks like (``lookup.requested``, ``audit.review.noted``):
#: checked by shape, not against this version's list, so that an event of a newer
#: broker, integrated by an older one during an upgrade, is not rejected.
_EVENT = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
#: Written only by the integrator, or only under the head lock (``append_unless``),
#: never through the queue
NOT_QUEUED = frozenset({AUDIT_ENTRY_REJECTED, AUDIT_REDACTED})
#: The trail's own times: UTC, to the millisecond (the history compares them as text)
_AT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00")
#: Keys the integrator sets (``seq``, ``at``, ``event``) or readers add to a record's
#: view (``federator.audit.redaction.VIEW_KEYS``, and ``sealed``): an entry's fields
#: may not bring their own.
RESERVED = ("seq", "at", "event", "prev_hash", "hash", "sealed", "salts", "redacted",
            "redactions", "pruned")
#: The filter columns' lengths: a longer value would fail the batch's insert.
LENGTHS = {c: getattr(audit_records.c[c].type, "length", None) for c in INDEXED}
_FLAG = re.compile(r"[a-z][a-z0-9_]*")
FLAG_LENGTH = audit_flags.c.flag.type.length or 40
#: An entry's fields at most (a lookup of 150 authorities queues about 40 kB)
MAX_FIELDS = 1_000_000
#: Nesting at most (a record nests four deep); deeper, JSON readers recurse too far
MAX_DEPTH = 32
FLAG = "entry_rejected"


@dataclass(frozen=True)
class Rejected:
    reason: str


def decode(at: str, event: str, fields: str | None) -> dict[str, Any] | Rejected:
    """The record (without its ``seq``) a queued entry becomes, or why it cannot.
    ``fields`` None: not read, being longer than ``MAX_FIELDS``."""
    if not isinstance(event, str) or not _EVENT.fullmatch(event):
        return Rejected("event: not an event name")
    if not _is_time(at):
        return Rejected("at: not a time in UTC to the millisecond "
                        "(2026-12-04T10:00:00.000+00:00)")
    if fields is None or len(fields) > MAX_FIELDS:
        return Rejected(f"fields: longer than {MAX_FIELDS:,} characters")
    if fields.count("[") + fields.count("{") > MAX_DEPTH and _depth(fields) > MAX_DEPTH:
        return Rejected(f"fields: nested more than {MAX_DEPTH} deep")
    try:
        loaded = json.loads(fields)
    except (TypeError, ValueError, RecursionError):
        return Rejected("fields: not JSON")
    if not isinstance(loaded, dict):
        return Rejected("fields: not a JSON object")
    if (reason := problem(event, loaded, fields)) is not None:
        return Rejected(reason)
    return {"at": at, "event": event, **loaded}


def problem(event: str, fields: Mapping[str, Any], encoded: str) -> str | None:
    """What in an entry's event and fields (``encoded`` as the queue holds them)
    would have it rejected, or None; the writer's check before it queues."""
    if event in NOT_QUEUED:
        return f"event: {event} is never queued"
    if holds_nul(encoded):  # PostgreSQL's text cannot hold it
        return "fields: hold a NUL character"
    # A surrogate escape unpaired (``"\\ud800"``) loads as text that no UTF-8 encoder
    # takes: the database driver would fail the batch's history read. Paired ones
    # are what ``encode`` writes for an emoji; only then is the whole re-encoded.
    if "\\ud" in encoded or "\\uD" in encoded:
        try:
            json.dumps(fields, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            return "fields: hold an unpaired surrogate (not Unicode text)"
    for key in RESERVED:
        if key in fields:
            return f"fields.{key}: set by the integrator, not by an entry"
    for key in INDEXED:
        value = fields.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            return f"fields.{key}: not text"
        if (limit := LENGTHS[key]) is not None and len(value) > limit:
            return f"fields.{key}: longer than {limit} characters"
    flags = fields.get("flags")
    if flags is not None and not (isinstance(flags, list) and all(
            isinstance(f, Mapping) and isinstance(f.get("flag"), str)
            and len(f["flag"]) <= FLAG_LENGTH and _FLAG.fullmatch(f["flag"])
            for f in flags)):
        return (f"fields.flags: not a list of flags (each a name of at most {FLAG_LENGTH} "
                "characters)")
    if event == AUDIT_PRUNED:
        first, last, newly = fields.get("first"), fields.get("last"), fields.get("newly")
        if not (_whole(first) and _whole(last) and first <= last):
            return "fields.first, fields.last: not a range of records"
        if newly is not None and not (isinstance(newly, list) and len(newly) == 2
                                      and all(_whole(n) for n in newly)):
            return "fields.newly: not a range of records"
    return None


def problem_at(record: Mapping[str, Any], seq: int) -> str | None:
    """What, once numbered ``seq``, the record could not say: an ``audit.pruned``
    covering records after itself."""
    if record.get("event") == AUDIT_PRUNED and record["last"] >= seq:
        return "fields.last: a prune of records after its own"
    return None


def rejection(queue_id: int, at: str, event: str, fields_sha256: str, reason: str,
              now: str) -> dict[str, Any]:
    """The ``audit.entry_rejected`` record (without its ``seq``) written in the
    place of queue row ``queue_id``: what was queued, by its hash, never its text."""
    return {
        "at": now, "event": AUDIT_ENTRY_REJECTED, "queue_id": queue_id,
        "queued_event": event if isinstance(event, str) and _EVENT.fullmatch(event) else None,
        "queued_at": at if _is_time(at) else None,
        "fields_sha256": fields_sha256, "reason": reason,
        "flags": [{"flag": FLAG, "reason": (
            f"Queue entry {queue_id} could not become a record ({reason}); its row is "
            "kept in audit_queue_rejected")}]}


def sha256_of(fields: str) -> str:
    return hashlib.sha256(fields.encode("utf-8", "surrogatepass")).hexdigest()


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _is_time(at: Any) -> bool:
    """The trail's own format, within years datetime's arithmetic can move a day
    and more either side of (a flag's window is subtracted, a time zone applied)."""
    if not isinstance(at, str) or not _AT.fullmatch(at):
        return False
    try:
        return 1970 <= datetime.fromisoformat(at).year <= 9000
    except ValueError:
        return False


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKET = re.compile(r"[\[\]{}]")


def _depth(fields: str) -> int:
    """How deep the JSON text nests (brackets outside strings), without parsing it
    (asked only of text with more brackets than ``MAX_DEPTH``)."""
    depth = deepest = 0
    for c in _BRACKET.findall(_STRING.sub("", fields)):
        depth += 1 if c in "[{" else -1
        deepest = max(deepest, depth)
    return deepest
