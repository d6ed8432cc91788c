"""Audit trail: signed checkpoints, authority and flag indexes, filter indexes.

Revision ID: 0002_audit
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_audit"
down_revision = "0001"

SEQ = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit_checkpoints",
        sa.Column("tree_size", SEQ, primary_key=True, autoincrement=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("root_hash", sa.String(64), nullable=False),
        sa.Column("head_hash", sa.String(64), nullable=False),
        sa.Column("kid", sa.String(100), nullable=False),
        sa.Column("signed", sa.Text, nullable=False),
        sa.Column("frontier", sa.Text, nullable=False),
    )
    op.create_table(
        "audit_authorities",
        sa.Column("seq", SEQ, primary_key=True, autoincrement=False),
        sa.Column("authority_id", sa.String(64), primary_key=True),
    )
    op.create_index("ix_audit_authorities_authority", "audit_authorities",
                    ["authority_id", "seq"])
    op.create_table(
        "audit_flags",
        sa.Column("seq", SEQ, primary_key=True, autoincrement=False),
        sa.Column("flag", sa.String(40), primary_key=True),
    )
    op.create_index("ix_audit_flags_flag", "audit_flags", ["flag", "seq"])
    op.create_index("ix_audit_records_at", "audit_records", ["at"])
    op.create_index("ix_audit_records_actor", "audit_records", ["actor_id", "event", "at"])
    op.create_index("ix_audit_records_organisation", "audit_records", ["actor_organisation"])


def downgrade() -> None:
    op.drop_index("ix_audit_records_organisation", "audit_records")
    op.drop_index("ix_audit_records_actor", "audit_records")
    op.drop_index("ix_audit_records_at", "audit_records")
    op.drop_table("audit_flags")
    op.drop_table("audit_authorities")
    op.drop_table("audit_checkpoints")
