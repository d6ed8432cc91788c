"""What an append writes, without the database: sealing, the rows of the filter
tables, and which checkpoints a batch makes due.

Pure functions; ``federator.audit.trail`` (one record) and
``federator.audit.batching`` (a batch of queued entries) do the I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from federator.audit.chain import INDEXED, canonical, record_hash
from federator.audit.redaction import seal
from federator.names import LOOKUP_COMPLETED, MATCH

#: Events committed without waiting for the disk (SQLite ``synchronous=NORMAL`` in
#: WAL mode, PostgreSQL ``synchronous_commit=off``, for that transaction only).
#: ``lookup.completed`` records what already happened: nothing waits on it, unlike
#: ``lookup.requested``, which must be on disk before any authority is asked, and
#: is (every other event commits with a flush). Such a commit survives the
#: process being killed (it is in the database's log, in the operating system's
#: hands); only a power cut or kernel crash in the next moments can lose it, and
#: then only as the tail of the log: both databases replay their log in order, so
#: a later flushed record (the next ``lookup.requested``) carries every earlier
#: one to disk with it, and the chain never gets a gap.
RELAXED = frozenset({LOOKUP_COMPLETED})

@dataclass
class Sealed:
    """One record as written: its row in ``audit_records``, the rows of the
    filter tables, and the record as ``append`` returns it."""

    row: dict[str, Any]
    authorities: list[dict[str, Any]] = field(default_factory=list)
    refs: list[dict[str, Any]] = field(default_factory=list)
    flags: list[dict[str, Any]] = field(default_factory=list)
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def hash(self) -> str:
        return str(self.row["hash"])


def sealed(record: Mapping[str, Any], prev: str, entry: str | None = None) -> Sealed:
    """``record`` (with its ``seq``, ``at``, ``event`` and flags) sealed after
    ``prev``: free text by its salted hash (format 2), the body hashed into the chain."""
    seq = record["seq"]
    hashed, texts = seal(record)
    body = canonical(hashed)
    digest = record_hash(prev, body)
    row = {k: hashed.get(k) for k in INDEXED}
    row.update({"seq": seq, "at": record["at"], "event": record["event"], "body": body,
                "prev_hash": prev, "hash": digest, "texts": texts, "entry": entry})
    refs = record_refs(record) if record["event"] == LOOKUP_COMPLETED else []
    return Sealed(
        row=row,
        authorities=[{"seq": seq, "authority_id": a} for a in sorted(authorities(record))],
        refs=[{"seq": seq, "authority_id": a, "record_ref": ref} for a, ref in refs],
        flags=[{"seq": seq, "flag": f} for f in flag_names(record)],
        record={**record, **({"sealed": hashed["sealed"]} if texts else {}),
                "prev_hash": prev, "hash": digest})


def flag_names(record: Mapping[str, Any]) -> list[str]:
    return sorted({f["flag"] for f in record.get("flags") or []
                   if isinstance(f, Mapping) and f.get("flag")})


def record_refs(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Each authority's reference to the record it matched, once per authority."""
    refs = {o["id"][:64]: o["record_ref"][:128] for o in record.get("outcomes") or []
            if isinstance(o, Mapping) and isinstance(o.get("id"), str)
            and o.get("outcome") == MATCH
            and isinstance(o.get("record_ref"), str) and o["record_ref"]}
    return sorted(refs.items())


def authorities(record: Mapping[str, Any]) -> set[str]:
    found = {a for a in record.get("authorities") or [] if isinstance(a, str)}
    # An authority not asked (suspended, circuit open) never received the child's
    # identity: the lookup is not theirs to see, nor found under their name.
    found |= {o["id"] for o in record.get("outcomes") or []
              if isinstance(o, Mapping) and isinstance(o.get("id"), str)
              and not o.get("not_asked")}
    return {a[:64] for a in found}


def multiples(first: int, last: int, every: int) -> Iterable[int]:
    """The multiples of ``every`` among records ``first..last`` (checkpoints due)."""
    if every <= 0 or last < first:
        return range(0)
    return range(-(-first // every) * every, last + 1, every)
