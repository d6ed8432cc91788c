"""The stored Merkle tree (audit_tree, 0012) in SQLite and PostgreSQL: filled at
checkpoint signing and caught up on demand, never by an append; its O(log n)
proofs equal those computed from every leaf, survive pruning, and cannot prove
a size the records no longer reach."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError
from support.insider import insider

from federator.audit import tree_store
from federator.audit.merkle import (
    consistency_proof,
    frontier_extend,
    inclusion_proof,
    leaf_hash,
)
from federator.audit.tables import audit_tree
from federator.audit.trail import AuditTrail
from federator.signing import BrokerKeys
from federator.storage import audit_records, make_engine, upgrade

pytestmark = pytest.mark.integration


@pytest.fixture
def engine(database_url: str):
    engine = make_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def write(trail: AuditTrail, n: int) -> None:
    for i in range(n):
        trail.append("audit.records_listed", actor_id=f"u{i}", actor_role="auditor")


def nodes(engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(audit_tree)).scalar())


def same_proofs(engine, trail: AuditTrail, sizes: list[int]) -> None:
    for size in sizes:
        every = trail.leaf_hashes(size)
        for index in range(size):
            assert tree_store.inclusion(engine, index, size) == (
                every[index], inclusion_proof(index, every)), (index, size)
        for first in range(1, size + 1):
            proof, frontier = tree_store.consistency(engine, first, size)
            assert proof == consistency_proof(first, every), (first, size)
        assert frontier == frontier_extend([], 0, every)[0]


def test_signing_fills_the_tree_and_appends_never_do(engine, tmp_path: Path):
    trail = AuditTrail(engine, checkpoint_every=0)
    trail.sign_with(BrokerKeys.load(tmp_path / "key.json", "federator", create=True))
    write(trail, 13)
    assert nodes(engine) == 0  # 13 appends: not one node
    trail.checkpoint()
    with engine.connect() as conn:
        assert tree_store.filled(conn) == 12
    assert nodes(engine) == 6 + 3 + 1  # levels 1, 2, 3 over 12 leaves
    write(trail, 8)
    assert nodes(engine) == 10
    trail.checkpoint()
    with engine.connect() as conn:
        assert tree_store.filled(conn) == 20
    same_proofs(engine, trail, [1, 2, 5, 8, 13, 16, 21])


def test_a_trail_from_before_the_tree_is_caught_up_in_batches(engine):
    trail = AuditTrail(engine, checkpoint_every=0)  # no keys: nothing signed, no tree
    write(trail, 45)
    assert nodes(engine) == 0
    assert tree_store.catch_up(engine, 45, batch=8) == 44
    with engine.connect() as conn:
        assert tree_store.filled(conn) == 44
    same_proofs(engine, trail, [3, 32, 44, 45])


def test_pruned_records_keep_the_tree_whole(engine):
    trail = AuditTrail(engine, checkpoint_every=0)
    write(trail, 20)
    before = [tree_store.inclusion(engine, i, 20) for i in range(20)]
    with insider(engine) as conn:  # bodies gone, leaves kept: as pruning leaves them
        for seq, body in conn.execute(select(audit_records.c.seq, audit_records.c.body)
                                      .where(audit_records.c.seq <= 9)).all():
            conn.execute(update(audit_records).where(audit_records.c.seq == seq).values(
                body="", leaf=leaf_hash(body.encode()).hex()))
    assert [tree_store.inclusion(engine, i, 20) for i in range(20)] == before
    tree_store.catch_up(engine, 20)
    assert tree_store.consistency(engine, 9, 20) is not None


def test_a_cut_trail_cannot_prove_a_size_it_no_longer_reaches(engine):
    trail = AuditTrail(engine, checkpoint_every=0)
    write(trail, 16)
    tree_store.catch_up(engine, 16)
    assert tree_store.consistency(engine, 4, 16) is not None
    with insider(engine) as conn:
        conn.execute(audit_records.delete().where(audit_records.c.seq > 12))
    # every node of the tree of 16 is still stored; the records are not there
    assert tree_store.consistency(engine, 4, 16) is None
    assert tree_store.inclusion(engine, 3, 16) is None
    assert tree_store.consistency(engine, 4, 12) is not None


def test_the_tree_is_append_only(engine):
    trail = AuditTrail(engine, checkpoint_every=0)
    write(trail, 4)
    tree_store.catch_up(engine, 4)
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text("UPDATE audit_tree SET hash = 'x' WHERE level = 1"))
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_tree"))
