"""After a lookup: the retry of the authorities that did not answer, and the receipt.

Both are built from the audit trail alone (the broker keeps nothing of an
answer). The rules are plain functions over the lookup's trail records;
:func:`load_lookup` is the only I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from federator.audit.asked import asked, asked_outcomes, not_asked
from federator.audit.checkpoints import Checkpoint
from federator.audit.trail import AuditTrail
from federator.inputs import bad_text
from federator.lookup.interrupted import close_one, is_cut_off
from federator.names import (
    LOOKUP_COMPLETED,
    LOOKUP_INTERRUPTED,
    LOOKUP_REQUESTED,
    NOT_ANSWERED,
)
from federator.storage import audit_records


class NotYours(LookupError):
    """No such lookup, or another practitioner's: answered 404 either way."""


class RetryRefused(ValueError):
    """The retry cannot go ahead (409); the message says why."""


@dataclass(frozen=True)
class LookupRecords:
    requested: Mapping[str, Any]
    completed: Mapping[str, Any] | None
    #: ``lookup.interrupted``: cut off by a crash before it completed
    interrupted: Mapping[str, Any] | None = None

    @property
    def open(self) -> bool:
        return self.completed is None and self.interrupted is None

    def in_order(self) -> list[Mapping[str, Any]]:
        return sorted((r for r in (self.requested, self.completed, self.interrupted)
                       if r is not None), key=lambda r: int(r["seq"]))


def load_lookup(trail: AuditTrail, lookup_id: str, actor_id: str, *,
                interrupted_after_s: float | None = None, now: datetime | None = None
                ) -> LookupRecords:
    """The lookup's records, if ``actor_id`` made it. Given ``interrupted_after_s``,
    a lookup found without an ending and older than that is closed as interrupted
    (``federator.lookup.interrupted``) first."""
    if len(lookup_id) > 64 or bad_text(lookup_id):  # no such id (PostgreSQL refuses a NUL)
        raise NotYours("no such lookup of yours")
    found = own_records(trail.records(lookup_id=lookup_id, limit=10), actor_id)
    if found.open and interrupted_after_s is not None and is_cut_off(
            found.requested, now=now or datetime.now(UTC), after_s=interrupted_after_s):
        close_one(trail, found.requested)  # None: another process ended it meanwhile
        found = own_records(trail.records(lookup_id=lookup_id, limit=10), actor_id)
    return found


def own_records(records: Sequence[Mapping[str, Any]], actor_id: str) -> LookupRecords:
    requested = next((r for r in records if r.get("event") == LOOKUP_REQUESTED), None)
    if requested is None or requested.get("actor_id") != actor_id:
        raise NotYours("no such lookup of yours")
    completed = next((r for r in records if r.get("event") == LOOKUP_COMPLETED), None)
    interrupted = next((r for r in records if r.get("event") == LOOKUP_INTERRUPTED), None)
    return LookupRecords(requested, completed, interrupted)


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
    if first.interrupted is not None and first.completed is None:
        # Cut off: nobody's answer was recorded, those asked and those not asked alike.
        failed = frozenset([*asked(first.requested), *not_asked(first.requested)])
    elif first.completed is None:
        raise RetryRefused("The first lookup has not finished yet.")
    else:
        failed = frozenset(o["id"] for o in first.completed.get("outcomes") or []
                           if isinstance(o, Mapping) and o.get("outcome") in NOT_ANSWERED)
    if not failed:
        raise RetryRefused("Every authority asked answered: there is nobody to ask again.")
    return failed


def receipt(first: LookupRecords, *, names: Mapping[str, str],
            checkpoint: Checkpoint | None, head_seq: int, checkpoint_every: int
            ) -> dict[str, Any]:
    """What the case file needs: when, why, on what basis, who was asked and how
    each answered (an interrupted lookup: ``interrupted``), who was not asked and
    why, and the signed checkpoint covering the records. No professionals, no
    child details, no flags."""
    requested, completed, interrupted = first.requested, first.completed, first.interrupted
    skipped = not_asked(requested, completed)
    outcomes = asked_outcomes(requested, completed)
    sent = asked(requested, completed)
    sent += [a for a in outcomes if a not in sent]
    pending = "interrupted" if interrupted is not None and completed is None else "pending"
    records = first.in_order()
    last = records[-1]
    body: dict[str, Any] = {
        "lookup_id": requested["lookup_id"],
        "at": requested["at"],
        "purpose": requested.get("purpose"),
        "basis_type": requested.get("basis_type"),
        "follows": requested.get("follows"),
        "complete": (completed.get("complete") if completed is not None
                     else False if interrupted is not None else None),
        "interrupted": completed is None and interrupted is not None,
        "authorities": [{"id": a, "name": names.get(a, a),
                         "outcome": outcomes.get(a, pending)} for a in sent],
        "not_asked": [{"id": a, "name": names.get(a, a), "reason": why}
                      for a, why in skipped.items()],
        "records": [{"seq": r["seq"], "event": r["event"], "hash": r["hash"]}
                    for r in records],
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
                   names: Mapping[str, str], checkpoint_every: int,
                   interrupted_after_s: float | None = None) -> dict[str, Any]:
    """The receipt of one of ``actor_id``'s lookups; raises :class:`NotYours`.
    A lookup cut off by a crash is closed as interrupted first (``load_lookup``)."""
    first = load_lookup(trail, lookup_id, actor_id, interrupted_after_s=interrupted_after_s)
    last = first.in_order()[-1]
    return receipt(first, names=names, checkpoint=trail.covering(int(last["seq"])),
                   head_seq=head_seq(trail), checkpoint_every=checkpoint_every)
