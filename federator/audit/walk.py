"""The one walk every verification makes over the trail's rows, in a tight loop.

Pure: rows in, a ``Verdict`` out. Each row is a tuple in ``ROW`` order (what
``federator.audit.reading`` fetches from the database; :func:`as_row` turns a
mapping, an export's record, into one). For each row, in seq order:

- its number follows the last, and its ``prev_hash`` is the last one's hash;
- a pruned row (body ``''``, with ``marks``) keeps a well-formed leaf hash;
  any other row's hash is SHA-256 over the previous hash and its body, its
  body is a JSON object, its ``seq`` is the row's, and each filter column
  (``MIRRORED``) still says what the body says;
- with ``marks``, its sealed free text matches its hashes and each prune and
  redaction is accounted for (``federator.audit.marks``);
- at each size in ``stops`` (the checkpoints to check), ``on_stop`` is given
  the chain head there and the RFC 9162 frontier of the leaves so far.

A body comes as bytes (its UTF-8, as the database holds it) or as text.
Speed (``benchmarks/audit.py``): bodies are parsed with orjson (the stdlib's
parser only where orjson refuses a body the stdlib accepts, so what passes is
the same), the filter columns are compared as one tuple, the marks are asked
only about rows they could object to, and the Merkle frontier is kept only up
to the last checkpoint it is checked against.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import orjson

from federator.audit.chain import GENESIS, MIRRORED, Verdict
from federator.audit.marks import Marks
from federator.names import AUDIT_PRUNED, AUDIT_REDACTED

#: The columns of a row, in order.
ROW = ("seq", "body", "prev_hash", "hash", "texts", "leaf", *MIRRORED)
#: A column the rows' source does not carry (an export's CSV has no free text
#: and no filter columns): its check is skipped, as it cannot be made.
ABSENT = ...
assert MIRRORED == ("at", "event", "lookup_id", "actor_id", "actor_role",
                    "actor_organisation", "purpose", "basis_type", "child_pseudonym")
_MARKED = frozenset({AUDIT_PRUNED, AUDIT_REDACTED})
_HEX = frozenset("0123456789abcdef")

#: ``on_stop(seq, head_hash, frontier)``: a failure, or None when the
#: checkpoints at ``seq`` hold.
OnStop = Callable[[int, str, Sequence[bytes]], Verdict | None]


def as_row(record: Mapping[str, Any]) -> tuple[Any, ...]:
    """A mapping with ``seq``, ``body``, ``prev_hash``, ``hash`` and any of the
    other columns, as a row (``ABSENT`` for a column it does not have)."""
    return (record["seq"], record["body"], record["prev_hash"], record["hash"],
            record.get("texts", ABSENT), record.get("leaf"),
            *(record.get(k, ABSENT) for k in MIRRORED))


def _hex64(value: Any) -> bool:
    return value.__class__ is str and len(value) == 64 and _HEX.issuperset(value)


def _sealed_intact(sealed: Any, texts: Any) -> bool:
    """True only when each text a record seals is beside it, unredacted, and
    matches its salted hash, and no other text is: what ``marks.record`` would
    find nothing wrong with and nothing to note (it is asked otherwise)."""
    if sealed.__class__ is not dict or texts.__class__ is not str:
        return False
    try:
        held = orjson.loads(texts)
    except orjson.JSONDecodeError:
        return False
    if held.__class__ is not dict or len(held) != len(sealed):
        return False
    for path, digest in sealed.items():
        entry = held.get(path)
        if entry.__class__ is not dict:
            return False
        salt, text = entry.get("salt"), entry.get("text")
        if salt.__class__ is not str or text.__class__ is not str or hashlib.sha256(
                f"{salt}\n{text}".encode()).hexdigest() != digest:
            return False
    return True


def walk(rows: Iterable[Sequence[Any]], *, start_prev: str = GENESIS, start_seq: int = 1,
         marks: Marks | None = None, complete: bool = True, stops: Sequence[int] = (),
         on_stop: OnStop | None = None, merkle: bool = False) -> tuple[Verdict, int]:
    """The verdict on ``rows`` and the last record that passed. With ``merkle``
    (the walk starts at record 1) the frontier is kept for ``on_stop``; without
    ``marks`` a pruned body is a changed body. ``stops`` ascending."""
    sha256 = hashlib.sha256
    loads = orjson.loads
    json_error = orjson.JSONDecodeError
    mirrored = MIRRORED
    expected_prev, expected_seq, count = start_prev, start_seq, 0
    pending = iter(stops)
    stop = next(pending, None)
    merkle_until = stops[-1] if merkle and stops else 0
    frontier: list[bytes] = []
    wanted = marks.wanted if marks is not None else {}
    for row in rows:
        seq, body, prev, digest, texts, leaf = row[0], row[1], row[2], row[3], row[4], row[5]
        if seq.__class__ is not int:
            seq = int(seq)
        if seq != expected_seq:
            if seq < expected_seq:
                return Verdict(False, count, expected_seq, f"record {seq} appears again "
                               f"where record {expected_seq} belongs"), expected_seq - 1
            return Verdict(False, count, expected_seq,
                           f"record {expected_seq} is missing"), expected_seq - 1
        if prev != expected_prev:
            return Verdict(False, count, seq, "link to the previous record is broken"), seq - 1
        if marks is not None and not body:
            if not _hex64(leaf):
                return Verdict(False, count, seq,
                               "its body is gone and its leaf hash with it"), seq - 1
            marks.pruned(seq)
            node = bytes.fromhex(leaf) if seq <= merkle_until else b""
        else:
            raw = body if body.__class__ is bytes else body.encode()
            try:
                ok = sha256(prev.encode("ascii") + b"\n" + raw).hexdigest() == digest
            except UnicodeEncodeError:
                ok = False
            if not ok:
                return Verdict(False, count, seq,
                               "record content does not match its hash"), seq - 1
            try:
                try:
                    parsed = loads(raw)
                except json_error:
                    parsed = json.loads(raw)
            except ValueError:
                return Verdict(False, count, seq, "record body is not JSON"), seq - 1
            if parsed.__class__ is not dict:
                return Verdict(False, count, seq, "record body is not a JSON object"), seq - 1
            get = parsed.get
            if get("seq") != seq:
                return Verdict(False, count, seq, "sequence number altered"), seq - 1
            if row[6:] != (get("at"), get("event"), get("lookup_id"), get("actor_id"),
                           get("actor_role"), get("actor_organisation"), get("purpose"),
                           get("basis_type"), get("child_pseudonym")):  # MIRRORED
                altered = [k for k, v in zip(mirrored, row[6:], strict=True)
                           if v is not ABSENT and v != get(k)]
                if altered:
                    return Verdict(False, count, seq, f"column {altered[0]} no longer "
                                   "matches the hashed record"), seq - 1
            if marks is not None and (
                    not (texts is ABSENT or (texts is None and get("sealed") is None)
                         or _sealed_intact(get("sealed"), texts))
                    or seq in wanted or get("event") in _MARKED):
                problem = marks.record(seq, parsed, texts)
                if problem is not None:
                    return Verdict(False, count, *problem), seq - 1
            node = sha256(b"\x00" + raw).digest() if seq <= merkle_until else b""
        expected_prev, expected_seq, count = digest, seq + 1, count + 1
        if seq <= merkle_until:  # RFC 9162 frontier: fold the perfect subtrees it completes
            size = seq - 1
            while size & 1:
                node = sha256(b"\x01" + frontier.pop() + node).digest()
                size >>= 1
            frontier.append(node)
        if seq == stop:
            assert on_stop is not None
            failure = on_stop(seq, digest, frontier)
            if failure is not None:
                return failure, seq
            stop = next(pending, None)
    last = expected_seq - 1
    if marks is None:
        return Verdict(True, count), last
    problem = marks.finish(complete=complete)
    if problem is not None:
        return Verdict(False, count, *problem), last
    return Verdict(True, count, pruned=marks.report()), last
