"""The audit trail's own tables beside ``audit_records`` (created by 0002_audit)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, SmallInteger, String, Table, Text

from federator.storage import metadata

SEQ = BigInteger().with_variant(Integer, "sqlite")

#: Signed statements of the tree at a size: RFC 9162 root and the chain head.
audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("tree_size", SEQ, primary_key=True, autoincrement=False),
    Column("at", String(40), nullable=False),
    Column("root_hash", String(64), nullable=False),
    Column("head_hash", String(64), nullable=False),
    Column("kid", String(100), nullable=False),
    Column("signed", Text, nullable=False),  # JWS compact over the checkpoint claims
    Column("frontier", Text, nullable=False),  # JSON list of hex subtree roots
)

#: Which authorities a lookup record names (asked, or answered), for filtering.
audit_authorities = Table(
    "audit_authorities",
    metadata,
    Column("seq", SEQ, primary_key=True, autoincrement=False),
    Column("authority_id", String(64), primary_key=True),
)

#: Each authority's reference to the record it matched, from ``lookup.completed``
#: (0005_audit_child_refs): the lookups of one matched child, however typed.
audit_child_refs = Table(
    "audit_child_refs",
    metadata,
    Column("seq", SEQ, primary_key=True, autoincrement=False),
    Column("authority_id", String(64), primary_key=True),
    Column("record_ref", String(128), nullable=False),
    Index("ix_audit_child_refs_ref", "authority_id", "record_ref", "seq"),
)

#: Flags raised on a record when it was written, for filtering.
audit_flags = Table(
    "audit_flags",
    metadata,
    Column("seq", SEQ, primary_key=True, autoincrement=False),
    Column("flag", String(40), primary_key=True),
    Index("ix_audit_flags_flag_seq", "flag", "seq"),  # 0009: one flag's newest first
)

#: The Merkle tree's interior nodes (0012_audit_tree): the root of each complete
#: perfect subtree, ``level`` 1 and up (level 0, the leaves, are the records'),
#: ``idx`` its place at that level. Filled in batches when a checkpoint is signed
#: and on demand, never by an append; proofs read O(log n) of them
#: (federator.audit.tree, federator.audit.tree_store).
audit_tree = Table(
    "audit_tree",
    metadata,
    Column("level", SmallInteger, primary_key=True, autoincrement=False),
    Column("idx", SEQ, primary_key=True, autoincrement=False),
    Column("hash", String(64), nullable=False),
)

#: Entries committed by writers and not yet integrated into the chain (0013_audit_queue,
#: PostgreSQL; ``federator.audit.batching``): ``fields`` is the record's JSON.
audit_queue = Table(
    "audit_queue",
    metadata,
    Column("id", SEQ, primary_key=True, autoincrement=True),
    Column("entry", String(32), nullable=False, unique=True),
    Column("at", String(40), nullable=False),
    Column("event", String(60), nullable=False),
    Column("fields", Text, nullable=False),
)

#: Queued entries that could not become records (0014_audit_queue_rejected;
#: ``federator.audit.queue_checks``): the queue row as it was, the seq of the
#: ``audit.entry_rejected`` record written in its place, and why.
audit_queue_rejected = Table(
    "audit_queue_rejected",
    metadata,
    # no key: nothing an insider plants here can make setting a row aside fail
    Column("queue_id", SEQ, nullable=False),
    Column("entry", String(32), nullable=False),
    Column("at", String(40), nullable=False),
    Column("event", String(60), nullable=False),
    Column("fields", Text, nullable=False),
    Column("seq", SEQ, nullable=False, index=True),
    Column("reason", Text, nullable=False),
)
