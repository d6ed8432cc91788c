"""The Merkle tree's stored nodes (``audit_tree``, 0012): filled, and read for proofs.

Filling walks the leaves after the last stored pair (``filled``) with the
frontier there, and stores every node of level 1 and up that they complete:
``fill`` when a checkpoint is signed (the few leaves since the last one, in the
signer's transaction, under the checkpoint lock) and ``catch_up`` before a
proof, in batches each committed on its own (a trail from before 0012, or one
whose signer skipped a long stretch). Appends never touch the tree.

A proof then reads the O(log n) nodes :mod:`federator.audit.tree` names (level
0 from the records themselves): two indexed queries, however long the trail.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import Connection, Engine, and_, func, or_, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError

from federator.audit import tree
from federator.audit.merkle import (
    ProofError,
    frontier_root,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from federator.audit.reading import leaves
from federator.audit.tables import audit_tree
from federator.storage import audit_records

log = logging.getLogger(__name__)

#: Leaves read and nodes written per committed batch when catching up.
CATCH_UP_BATCH = 50_000
#: A checkpoint's signer fills the tree only when it is this close behind (the
#: leaves it reads anyway); a longer stretch is left to ``catch_up``.
SIGNER_REACH = 5_000
#: Key of the PostgreSQL advisory lock checkpoints are signed under (trail.CHECKPOINT_LOCK).
CHECKPOINT_LOCK = 0x61756475


def filled(conn: Connection) -> int:
    """How many leaves the stored nodes cover (rounded down to a pair: a lone
    last leaf completes no node)."""
    last = conn.execute(select(func.max(audit_tree.c.idx)).where(audit_tree.c.level == 1)
                        ).scalar()
    return 0 if last is None else 2 * (int(last) + 1)


def read_nodes(conn: Connection, wanted: Iterable[tree.Node]) -> dict[tree.Node, bytes]:
    """The nodes asked for that exist: level 0 from the records, others stored."""
    wanted = set(wanted)
    out: dict[tree.Node, bytes] = {}
    seqs = sorted(i + 1 for level, i in wanted if level == 0)
    if seqs:
        rows = conn.execute(select(audit_records.c.seq, audit_records.c.body,
                                   audit_records.c.leaf).where(audit_records.c.seq.in_(seqs)))
        for seq, body, leaf in rows:
            out[(0, int(seq) - 1)] = bytes.fromhex(leaf) if body == "" else leaf_hash(
                body.encode())
    by_level: dict[int, list[int]] = {}
    for level, i in wanted:
        if level > 0:
            by_level.setdefault(level, []).append(i)
    if by_level:  # one primary-key range per level (a row-value IN is a scan in SQLite)
        rows = conn.execute(select(audit_tree.c.level, audit_tree.c.idx, audit_tree.c.hash)
                            .where(or_(*(and_(audit_tree.c.level == level,
                                              audit_tree.c.idx.in_(sorted(ids)))
                                         for level, ids in sorted(by_level.items())))))
        for level, i, digest in rows:
            out[(int(level), int(i))] = bytes.fromhex(digest)
    return out


def _insert(conn: Connection, nodes: list[tuple[tree.Node, bytes]]) -> None:
    if not nodes:
        return
    values = [{"level": level, "idx": i, "hash": h.hex()} for (level, i), h in nodes]
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.execute(pg_insert(audit_tree).on_conflict_do_nothing(), values)
    elif dialect == "sqlite":
        conn.execute(sqlite_insert(audit_tree).on_conflict_do_nothing(), values)
    else:
        conn.execute(audit_tree.insert(), values)


def fill(conn: Connection, upto: int, *, most: int | None = None) -> int:
    """Store the nodes leaves ``filled(conn)`` .. ``upto`` complete (at most
    ``most`` leaves of them), in ``conn``'s transaction; stops at a gap in the
    records. Returns how far the tree is filled now."""
    start = filled(conn)
    if most is not None:
        upto = min(upto, start + most)
    if upto <= start:
        return start
    spans = tree.frontier_ranges(start)
    have = read_nodes(conn, tree.needed(spans))
    try:
        frontier = tree.hashes(spans, have)
    except KeyError:  # a node is missing below the filled mark: start again from 0
        log.warning("the audit tree has a hole below %s: refilled from the first leaf", start)
        start, frontier = 0, []
    reached = start
    batch: list[tuple[tree.Node, bytes]] = []

    def counted() -> Iterable[bytes]:
        nonlocal reached
        for leaf in leaves(conn, start + 1, upto):
            reached += 1
            yield leaf

    for node in tree.completed(start, counted(), frontier):
        batch.append(node)
        if len(batch) >= 5000:
            _insert(conn, batch)
            batch = []
    _insert(conn, batch)
    return reached - reached % 2


def fill_at_signing(conn: Connection, size: int) -> None:
    """At a checkpoint's signing, in its transaction: the nodes its leaves complete
    (at most ``SIGNER_REACH`` leaves). On PostgreSQL inside a savepoint, so that
    a tree that cannot be written (a role without INSERT on it) costs the proofs
    a catch-up later, never the checkpoint."""
    if conn.dialect.name != "postgresql":
        fill(conn, size, most=SIGNER_REACH)
        return
    try:
        with conn.begin_nested():
            fill(conn, size, most=SIGNER_REACH)
    except SQLAlchemyError:
        log.warning("audit tree not filled at checkpoint %s", size)


def take_lock(conn: Connection) -> None:
    """The checkpoint lock, waited for (PostgreSQL: a transaction advisory lock;
    SQLite: its write lock)."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHECKPOINT_LOCK})
    elif dialect == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def catch_up(engine: Engine, size: int, batch: int = CATCH_UP_BATCH) -> int:
    """Fill the tree to at least ``size`` leaves (or to a gap), in batches each
    committed under the checkpoint lock. Returns how far it is filled."""
    with engine.connect() as conn:
        reached = filled(conn)
        conn.rollback()
        while reached < size - 1:  # a lone last leaf needs no node
            take_lock(conn)
            now = fill(conn, size, most=batch)
            conn.commit()
            if now <= reached:
                break  # a gap in the records: no further
            reached = now
    return reached


class TreeUnavailable(RuntimeError):
    """The tree could not be brought up to the size asked (the database refused):
    no proof now, which is not evidence of anything (answered 503)."""


def _ready(engine: Engine, size: int) -> None:
    try:
        with engine.connect() as conn:
            done = filled(conn) >= size - 1
        if not done:
            catch_up(engine, size)
    except SQLAlchemyError as e:
        log.warning("audit tree not caught up to %s: %s", size, type(e).__name__)
        raise TreeUnavailable("the audit tree cannot be read or written now") from e


def inclusion(engine: Engine, index: int, size: int) -> tuple[bytes, list[bytes]] | None:
    """Leaf ``index``'s hash and its audit path in the tree of ``size`` leaves,
    from O(log size) nodes; None when the records do not reach ``size``."""
    _ready(engine, size)
    spans = tree.inclusion_ranges(index, size)
    with engine.connect() as conn:
        # the last record too: a trail cut below a signed size cannot prove it
        nodes = read_nodes(conn, tree.needed([*spans, (index, index + 1),
                                              (size - 1, size)]))
    if (0, size - 1) not in nodes:
        return None
    try:
        return nodes[(0, index)], tree.hashes(spans, nodes)
    except KeyError:
        return None


def consistency(engine: Engine, first: int, second: int
                ) -> tuple[list[bytes], list[bytes]] | None:
    """The consistency proof from ``first`` to ``second`` leaves and the frontier
    of ``second``; None when the records do not reach ``second``."""
    _ready(engine, second)
    spans = tree.consistency_ranges(first, second)
    edge = tree.frontier_ranges(second)
    with engine.connect() as conn:
        nodes = read_nodes(conn, tree.needed([*spans, *edge, (second - 1, second)]))
    if (0, second - 1) not in nodes:
        return None
    try:
        return tree.hashes(spans, nodes), tree.hashes(edge, nodes)
    except KeyError:
        return None


# -- what a proof is checked against ------------------------------------------------------


def inclusion_problem(index: int, size: int, leaf: bytes, proof: list[bytes],
                      root_hash: str) -> str | None:
    """Why the proof does not lead to the signed root (None: it does). The proof
    is given all the same: whoever checks it sees the same, and the broker does
    not hide what its database says (the operator is told: ``verify``)."""
    try:
        verify_inclusion(index, size, leaf, proof, bytes.fromhex(root_hash))
    except ProofError as e:
        return str(e)
    return None


def consistency_problem(first: int, first_root: str | None, second: int,
                        second_root: str | None, proof: list[bytes],
                        frontier: list[bytes]) -> str | None:
    """Why the proof and frontier do not agree with the signed roots known."""
    root = frontier_root(frontier)
    if second_root is not None and root.hex() != second_root:
        return f"the tree of {second} does not have its signed root"
    if first_root is None:
        return None
    try:
        verify_consistency(first, second, proof, bytes.fromhex(first_root), root)
    except ProofError as e:
        return str(e)
    return None
