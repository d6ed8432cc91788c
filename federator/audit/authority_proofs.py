"""An authority's receipt of a lookup that reached it: each of the lookup's
records naming the authority, as much of it as :func:`queries.for_authority`
shows, with its RFC 9162 inclusion proof against a signed checkpoint.

The authority checks it with the broker's public keys alone (the key history,
``/.well-known/federator-keys.json``): the checkpoint's signature gives the
tree's root at its size, and each leaf hash with its audit path must lead to
that root. The leaf is the hash of the whole record; the record itself (the
child's pseudonym, the practitioner, other authorities' outcomes) is not shown.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import select

from federator.audit import tree_store
from federator.audit.checkpoints import Checkpoint
from federator.audit.queries import decode, for_authority
from federator.audit.tables import audit_authorities
from federator.audit.trail import AuditTrail
from federator.inputs import bad_text
from federator.storage import audit_records

log = logging.getLogger(__name__)


class NotReached(LookupError):
    """No such lookup, or it did not reach this authority: 404 either way."""


class NotCovered(LookupError):
    """No signed checkpoint covers the lookup yet (the broker cannot sign)."""


def proof_body(records: Sequence[Mapping[str, Any]], authority: str, checkpoint: Checkpoint,
               prove: Callable[[int], tuple[bytes, list[bytes]]]) -> dict[str, Any]:
    """The answer: ``prove(index)`` is leaf ``index``'s hash and audit path in the
    checkpoint's tree (``tree_store.inclusion``: O(log n) nodes each)."""
    shown = []
    for record in records:
        index = int(record["seq"]) - 1
        leaf, proof = prove(index)
        shown.append({**for_authority(record, authority), "leaf_index": index,
                      "leaf_hash": leaf.hex(), "proof": [p.hex() for p in proof]})
    return {"lookup_id": records[0]["lookup_id"], "authority": authority,
            "tree_size": checkpoint.tree_size, "records": shown,
            "checkpoint": checkpoint.public()}


def reached(trail: AuditTrail, lookup_id: str, authority: str) -> list[dict[str, Any]]:
    """The lookup's records that name ``authority``; raises :class:`NotReached`."""
    if len(lookup_id) > 64 or bad_text(lookup_id):
        raise NotReached("no such lookup reached your authority")
    query = (select(audit_records).join(audit_authorities,
                                        audit_authorities.c.seq == audit_records.c.seq)
             .where(audit_records.c.lookup_id == lookup_id,
                    audit_authorities.c.authority_id == authority)
             .order_by(audit_records.c.seq).limit(10))
    with trail.engine.connect() as conn:
        records = [decode(row) for row in conn.execute(query).mappings().all()]
    if not records:
        raise NotReached("no such lookup reached your authority")
    return records


def authority_proof(trail: AuditTrail, lookup_id: str, authority: str) -> dict[str, Any]:
    """The receipt, against the smallest checkpoint covering the lookup's records
    (signed now when none does yet)."""
    records = reached(trail, lookup_id, authority)
    last = int(records[-1]["seq"])
    checkpoint = trail.covering(last)
    if checkpoint is None:
        checkpoint = trail.checkpoint()
    if checkpoint is None or checkpoint.tree_size < last:
        raise NotCovered("No signed checkpoint covers this lookup yet: try again in a minute.")
    def prove(index: int) -> tuple[bytes, list[bytes]]:
        try:
            found = tree_store.inclusion(trail.engine, index, checkpoint.tree_size)
        except tree_store.TreeUnavailable as e:
            raise NotCovered("The proof cannot be made now: try again in a minute.") from e
        if found is None:
            raise NotCovered("The trail holds fewer records than its checkpoint: ask an "
                             "auditor to run `federator audit verify`.")
        problem = tree_store.inclusion_problem(index, checkpoint.tree_size, *found,
                                               checkpoint.root_hash)
        if problem is not None:  # given all the same: the authority sees what it is
            log.error("audit tree: record %s does not lead to checkpoint %s's root (%s)",
                      index + 1, checkpoint.tree_size, problem)
        return found

    return proof_body(records, authority, checkpoint, prove)
