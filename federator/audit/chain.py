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
    and prunes and redactions are checked against the records that made them.
    A column a row does not have is not checked (``federator.audit.walk``)."""
    from federator.audit.walk import as_row, walk

    verdict, _ = walk(map(as_row, rows), start_prev=start_prev, start_seq=start_seq,
                      marks=marks, complete=complete)
    return verdict
