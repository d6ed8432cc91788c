"""Audit: the authorities' references to the records they matched.

A kit answers a match with ``record_ref``, an opaque keyed hash of its own
record id, stable per authority. ``lookup.completed`` keeps it per authority;
this table mirrors it so subject access and "was this child looked up?" find
the lookups of the matched child however the details were typed (a lookup
with one changed letter is another pseudonym, but the same record).

Revision ID: 0005_audit_child_refs
Revises: 0004_audit_flag_indexes
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_audit_child_refs"
down_revision = "0004_audit_flag_indexes"

SEQ = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit_child_refs",
        sa.Column("seq", SEQ, primary_key=True, autoincrement=False),
        sa.Column("authority_id", sa.String(64), primary_key=True),
        sa.Column("record_ref", sa.String(128), nullable=False),
    )
    op.create_index("ix_audit_child_refs_ref", "audit_child_refs",
                    ["authority_id", "record_ref", "seq"])


def downgrade() -> None:
    op.drop_index("ix_audit_child_refs_ref", "audit_child_refs")
    op.drop_table("audit_child_refs")
