"""After a lookup: the retry of the authorities that did not answer, and the receipt.

Both are built from the audit trail alone (the broker keeps nothing of an
answer). The rules are plain functions over the lookup's trail records;
:func:`load_lookup` is the only I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from federator.audit.checkpoints import Checkpoint
from federator.audit.trail import AuditTrail
from federator.inputs import bad_text
from federator.names import LOOKUP_COMPLETED, LOOKUP_REQUESTED, NOT_ANSWERED
from federator.storage import audit_records


class NotYours(LookupError):
    """No such lookup, or another practitioner's: answered 404 either way."""


class RetryRefused(ValueError):
    """The retry cannot go ahead (409); the message says why."""


@dataclass(frozen=True)
class LookupRecords:
    requested: Mapping[str, Any]
    completed: Mapping[str, Any] | None


def load_lookup(trail: AuditTrail, lookup_id: str, actor_id: str) -> LookupRecords:
    """The lookup's ``requested`` and ``completed`` records, if ``actor_id`` made it."""
    if len(lookup_id) > 64 or bad_text(lookup_id):  # no such id (PostgreSQL refuses a NUL)
        raise NotYours("no such lookup of yours")
    records = trail.records(lookup_id=lookup_id, limit=10)
    return own_records(records, actor_id)


def own_records(records: Sequence[Mapping[str, Any]], actor_id: str) -> LookupRecords:
    requested = next((r for r in records if r.get("event") == LOOKUP_REQUESTED), None)
    if requested is None or requested.get("actor_id") != actor_id:
        raise NotYours("no such lookup of yours")
    completed = next((r for r in records if r.get("event") == LOOKUP_COMPLETED), None)
    return LookupRecords(requested, completed)


def retry_authorities(first: LookupRecords, *, pseudonym: str, now: datetime,
                      window_s: int) -> frozenset[str]:
    """The authorities to ask again; raises :class:`RetryRefused` saying why not."""
    at = datetime.fromisoformat(str(first.requested["at"]))
    if now - at > timedelta(seconds=window_s):
        hours = window_s / 3600
        raise RetryRefused(f"The lookup is older than {hours:g} hours: make a new lookup.")
    if first.requested.get("child_pseudonym") != pseudonym:
        raise RetryRefused("The child given is not the child of the first lookup: "
                           "give the same details, or make a new lookup.")
    if first.completed is None:
        raise RetryRefused("The first lookup has not finished yet.")
    failed = frozenset(o["id"] for o in first.completed.get("outcomes") or []
                       if isinstance(o, Mapping) and o.get("outcome") in NOT_ANSWERED)
    if not failed:
        raise RetryRefused("Every authority asked answered: there is nobody to ask again.")
    return failed


def receipt(first: LookupRecords, *, names: Mapping[str, str],
            checkpoint: Checkpoint | None, head_seq: int, checkpoint_every: int
            ) -> dict[str, Any]:
    """What the case file needs: when, why, on what basis, who was asked and how
    each answered, and the signed checkpoint covering the records. No
    professionals, no child details, no flags."""
    requested, completed = first.requested, first.completed
    outcomes = {o["id"]: o.get("outcome") for o in (completed or {}).get("outcomes") or []
                if isinstance(o, Mapping) and isinstance(o.get("id"), str)}
    asked = [a for a in requested.get("authorities") or [] if isinstance(a, str)]
    asked += [a for a in outcomes if a not in asked]
    last = completed or requested
    body: dict[str, Any] = {
        "lookup_id": requested["lookup_id"],
        "at": requested["at"],
        "purpose": requested.get("purpose"),
        "basis_type": requested.get("basis_type"),
        "follows": requested.get("follows"),
        "complete": (completed or {}).get("complete"),
        "authorities": [{"id": a, "name": names.get(a, a),
                         "outcome": outcomes.get(a, "pending")} for a in asked],
        "records": [{"seq": r["seq"], "event": r["event"], "hash": r["hash"]}
                    for r in (requested, completed) if r is not None],
    }
    if checkpoint is not None and checkpoint.tree_size >= last["seq"]:
        body["checkpoint"] = {**checkpoint.public(), "covered": True}
    else:
        more = next_checkpoint_after(last["seq"], head_seq, checkpoint_every)
        body["checkpoint"] = {"covered": False, "records_until_next": more, "message": (
            "Not yet covered by a checkpoint; the next one is signed after "
            f"{more} more record{'s' if more != 1 else ''}.")}
    return body


def next_checkpoint_after(seq: int, head_seq: int, every: int) -> int:
    """How many more records until a checkpoint covers record ``seq``."""
    every = max(every, 1)
    size = -(-max(seq, head_seq + 1) // every) * every
    return max(size - head_seq, 1)


def head_seq(trail: AuditTrail) -> int:
    with trail.engine.connect() as conn:
        return int(conn.execute(select(func.max(audit_records.c.seq))).scalar() or 0)


def lookup_receipt(trail: AuditTrail, lookup_id: str, actor_id: str, *,
                   names: Mapping[str, str], checkpoint_every: int) -> dict[str, Any]:
    """The receipt of one of ``actor_id``'s lookups; raises :class:`NotYours`."""
    first = load_lookup(trail, lookup_id, actor_id)
    last = first.completed or first.requested
    return receipt(first, names=names, checkpoint=trail.covering(int(last["seq"])),
                   head_seq=head_seq(trail), checkpoint_every=checkpoint_every)
