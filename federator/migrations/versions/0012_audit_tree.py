"""Audit: the Merkle tree's interior nodes, so that a proof reads O(log n) rows.

``audit_tree(level, idx, hash)``: the root of each complete perfect subtree of
the trail's RFC 9162 tree, level 1 and up (a level-0 node is a record's leaf
hash, from its body or, once pruned, its kept ``leaf``). Nodes are derived from
the records, written in batches when a checkpoint is signed and on demand
(``federator.audit.tree_store``), never by an append. The table starts empty:
a trail from before this migration is caught up the first time a proof needs
it. Like the other audit tables it is append-only (0007's triggers); on
PostgreSQL the application role needs SELECT and INSERT on it (docs/audit.md).

Revision ID: 0012_audit_tree
Revises: 0011_audit_retention
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_audit_tree"
down_revision = "0011_audit_retention"

TABLE = "audit_tree"
REFUSE = "federator_audit_append_only"  # 0007's


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("level", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("idx", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                  autoincrement=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE "
                   f"ON {TABLE} FOR EACH ROW EXECUTE FUNCTION {REFUSE}()")
        op.execute(f"CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE "
                   f"ON {TABLE} FOR EACH STATEMENT EXECUTE FUNCTION {REFUSE}()")
        return
    for action in ("UPDATE", "DELETE"):
        op.execute(f"CREATE TRIGGER {TABLE}_no_{action.lower()} BEFORE {action} ON {TABLE} "
                   f"BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only: "
                   f"{action} on {TABLE} is refused'); END")


def downgrade() -> None:
    # Derived from the records: nothing is lost, the next proof fills it again.
    op.drop_table(TABLE)
