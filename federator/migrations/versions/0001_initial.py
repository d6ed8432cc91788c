"""Endpoint registry and audit trail.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "endpoints",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("code", sa.String(20), nullable=False),
        sa.Column("coverage", sa.Text, nullable=False),
        sa.Column("protocol", sa.String(40), nullable=False),
        sa.Column("url", sa.String(500), nullable=False),
        sa.Column("timeout_ms", sa.Integer, nullable=False),
        sa.Column("contact", sa.String(500), nullable=False, server_default=""),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("credentials", sa.Text, nullable=True),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("updated_at", sa.String(40), nullable=False),
    )
    op.create_table(
        "audit_records",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                  autoincrement=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("event", sa.String(60), nullable=False),
        sa.Column("lookup_id", sa.String(40), nullable=True),
        sa.Column("actor_id", sa.String(200), nullable=True),
        sa.Column("actor_role", sa.String(60), nullable=True),
        sa.Column("actor_organisation", sa.String(200), nullable=True),
        sa.Column("purpose", sa.Text, nullable=True),
        sa.Column("basis_type", sa.String(40), nullable=True),
        sa.Column("child_pseudonym", sa.String(64), nullable=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
    )
    op.create_index("ix_audit_records_event", "audit_records", ["event"])
    op.create_index("ix_audit_records_lookup_id", "audit_records", ["lookup_id"])
    op.create_index("ix_audit_records_child_pseudonym", "audit_records", ["child_pseudonym"])


def downgrade() -> None:
    op.drop_table("audit_records")
    op.drop_table("endpoints")
