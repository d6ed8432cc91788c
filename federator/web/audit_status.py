"""The trail's verification status, shown on every auditor page, kept cheap.

A page view never walks the whole trail. What it costs:
- two indexed reads (the head record, the latest signed checkpoint);
- the last known result, from the shared state (Redis, or in-process): how far
  the trail was verified, the hash of that record, when, and when the last full
  walk was;
- at most ``STEP`` new records verified, only when the trail has grown and the
  last check is older than ``EVERY_S`` seconds: ``AuditTrail.verify(start=..)``
  from the record after the last verified one (its link to the verified record,
  its hashes, and the signatures and heads of the checkpoints in that range),
  after checking that the last verified record still has the hash it had
  (that one indexed read happens on every view).

A full walk (chain, every checkpoint's signature, head and Merkle root) runs
when an auditor asks for it (the "Verify the whole trail now" button, audited
as ``audit.verified`` like the API's), or inline when the trail is no longer
than ``STEP`` and nothing is known yet. A broken result stays until a full walk
says otherwise. ``plan`` is the pure decision; ``trail_status`` does the I/O.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from federator.audit.trail import AuditTrail
from federator.state import SharedState, StateUnavailable
from federator.storage import audit_records

KEY = "audit:verified"
TTL_S = 30 * 24 * 3600
STEP = 2000
EVERY_S = 10.0


@dataclass(frozen=True)
class Known:
    """The last verification result (kept in the shared state)."""

    ok: bool
    through: int  # the last record verified
    head_hash: str  # its hash when it was verified
    checked_at: float
    full_at: float | None = None
    bad_seq: int | None = None
    reason: str | None = None


def plan(known: Known | None, head: int, now: float, *, step: int = STEP,
         every_s: float = EVERY_S) -> str:
    """What a page view does: ``empty``, ``current`` (show what is known),
    ``extend`` (verify the new records), ``full`` (walk the whole, short, trail),
    ``shrunk`` (records verified before are gone) or ``wait`` (too much is new:
    show what is known and offer the full walk)."""
    if head == 0 and (known is None or known.through == 0):
        return "empty"
    if known is None:
        return "full" if head <= step else "wait"
    if not known.ok:
        return "current"
    if head < known.through:
        return "shrunk"
    if head == known.through or now - known.checked_at < every_s:
        return "current"
    return "extend" if head - known.through <= step else "wait"


def _load(state: SharedState) -> Known | None:
    try:
        [raw] = state.get_many([KEY])
    except StateUnavailable:
        return None
    if not raw:
        return None
    try:
        return Known(**json.loads(raw))
    except (ValueError, TypeError):
        return None


def _store(state: SharedState, known: Known) -> None:
    # when the shared state is down, the next page view knows nothing yet; the trail
    # itself is untouched
    with contextlib.suppress(StateUnavailable):
        state.put(KEY, json.dumps(asdict(known)), TTL_S)


def _hash_of(trail: AuditTrail, seq: int) -> str | None:
    if seq < 1:
        return None
    with trail.engine.connect() as conn:
        return conn.execute(select(audit_records.c.hash)
                            .where(audit_records.c.seq == seq)).scalar()


def _head(trail: AuditTrail) -> int:
    with trail.engine.connect() as conn:
        return conn.execute(select(audit_records.c.seq).order_by(
            audit_records.c.seq.desc()).limit(1)).scalar() or 0


def verify_all(trail: AuditTrail, state: SharedState) -> Known:
    """The full walk; its result is kept for the pages."""
    verdict = trail.verify()
    now = time.time()
    if verdict.ok:
        known = Known(True, verdict.count, _hash_of(trail, verdict.count) or "", now, now)
    else:
        known = Known(False, verdict.count, "", now, now, verdict.first_bad_seq,
                      verdict.reason)
    _store(state, known)
    return known


def _changed(trail: AuditTrail, known: Known) -> Known | None:
    """The last verified record no longer has the hash it was verified with."""
    if not known.ok or not known.through or _hash_of(trail, known.through) == known.head_hash:
        return None
    return Known(False, known.through - 1, "", time.time(), known.full_at, known.through,
                 f"record {known.through} changed after it was verified")


def _extend(trail: AuditTrail, known: Known, head: int) -> Known:
    verdict = trail.verify(start=known.through + 1, end=head)
    now = time.time()
    if verdict.ok:
        return Known(True, head, _hash_of(trail, head) or "", now, known.full_at)
    return Known(False, known.through + verdict.count, "", now, known.full_at,
                 verdict.first_bad_seq, verdict.reason)


def trail_status(trail: AuditTrail, state: SharedState) -> dict[str, Any]:
    """What the status banner shows."""
    head = _head(trail)
    known = _load(state)
    action = plan(known, head, time.time(), step=STEP, every_s=EVERY_S)
    if action == "full":
        known = verify_all(trail, state)
    elif known is not None and action in ("current", "extend", "wait"):
        changed = _changed(trail, known)  # one indexed read, every view
        if changed is not None:
            known = changed
        elif action == "extend":
            known = _extend(trail, known, head)
        if changed is not None or action == "extend":
            _store(state, known)
    elif action == "shrunk" and known is not None:
        known = Known(False, head, "", time.time(), known.full_at, head + 1,
                      f"record {head + 1} is missing: the trail was verified through "
                      f"record {known.through}")
        _store(state, known)
    checkpoint = trail.latest()
    view: dict[str, Any] = {
        "head": head, "state": "empty" if action == "empty" else (
            "unverified" if known is None else ("ok" if known.ok else "broken")),
        "checkpoint": ({"tree_size": checkpoint.tree_size, "at": checkpoint.at,
                        "kid": checkpoint.kid} if checkpoint else None),
    }
    if known is not None:
        view.update(through=known.through, pending=max(0, head - known.through),
                    checked_at=_when(known.checked_at),
                    full_at=_when(known.full_at) if known.full_at else None,
                    bad_seq=known.bad_seq, reason=known.reason)
    return view


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()  # shown as UK time
