"""Hashing of the trail: pure functions, no I/O."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from federator.audit.marks import Marks

GENESIS = "0" * 64


def canonical(record: Mapping[str, Any]) -> str:
    """One encoding of a record: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def record_hash(prev_hash: str, body: str) -> str:
    """SHA-256 over the previous hash and the canonical body."""
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + body.encode()).hexdigest()


@dataclass(frozen=True)
class Verdict:
    ok: bool
    count: int
    first_bad_seq: int | None = None
    reason: str | None = None
    #: the pruned range walked (``marks.Marks.report``): its bodies gone, its hashes kept
    pruned: tuple[dict[str, Any], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        if self.ok:
            return {"ok": True, "count": self.count,
                    **({"pruned": list(self.pruned)} if self.pruned else {})}
        return {"ok": False, "count": self.count, "seq": self.first_bad_seq,
                "reason": self.reason}


#: Fields of a record also stored in their own columns, for the auditors' filters.
#: The hash covers the body; verification checks that each column still says the
#: same as the body, so an edit to a column alone cannot mislead a filtered search.
INDEXED = ("lookup_id", "actor_id", "actor_role", "actor_organisation", "purpose",
           "basis_type", "child_pseudonym")
MIRRORED = ("at", "event", *INDEXED)


def verify_chain(rows: Iterable[Mapping[str, Any]], *, start_prev: str = GENESIS,
                 start_seq: int = 1, marks: Marks | None = None,
                 complete: bool = True) -> Verdict:
    """Check seq continuity, links and hashes of stored rows, in seq order. With
    ``marks``, a pruned record (body ``''``) passes on its link and kept leaf hash,
    and prunes and redactions are checked against the records that made them."""
    expected_prev, expected_seq, count = start_prev, start_seq, 0
    for row in rows:
        seq = int(row["seq"])
        if seq < expected_seq:
            return Verdict(False, count, expected_seq,
                           f"record {seq} appears again where record {expected_seq} belongs")
        if seq > expected_seq:
            return Verdict(False, count, expected_seq, f"record {expected_seq} is missing")
        if row["prev_hash"] != expected_prev:
            return Verdict(False, count, seq, "link to the previous record is broken")
        if marks is not None and row["body"] == "":
            if not _hex64(row.get("leaf")):
                return Verdict(False, count, seq, "its body is gone and its leaf hash with it")
            marks.pruned(seq)
            expected_prev, expected_seq, count = row["hash"], seq + 1, count + 1
            continue
        if record_hash(row["prev_hash"], row["body"]) != row["hash"]:
            return Verdict(False, count, seq, "record content does not match its hash")
        try:
            body = json.loads(row["body"])
        except ValueError:
            return Verdict(False, count, seq, "record body is not JSON")
        if not isinstance(body, dict):
            return Verdict(False, count, seq, "record body is not a JSON object")
        if body.get("seq") != seq:
            return Verdict(False, count, seq, "sequence number altered")
        altered = [k for k in MIRRORED if k in row and row[k] != body.get(k)]
        if altered:
            return Verdict(False, count, seq,
                           f"column {altered[0]} no longer matches the hashed record")
        if marks is not None:
            # an export's CSV carries no free text: nothing to check it with
            problem = marks.record(seq, body, row.get("texts", ...))
            if problem is not None:
                return Verdict(False, count, *problem)
        expected_prev, expected_seq, count = row["hash"], seq + 1, count + 1
    if marks is None:
        return Verdict(True, count)
    problem = marks.finish(complete=complete)
    if problem is not None:
        return Verdict(False, count, *problem)
    return Verdict(True, count, pruned=marks.report())


def _hex64(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(
        c in "0123456789abcdef" for c in value)
