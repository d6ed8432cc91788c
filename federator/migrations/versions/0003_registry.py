"""Registry: review reasons, conformance checks and health probes.

Revision ID: 0003_registry
Revises: 0002_audit
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_registry"
down_revision = "0002_audit"


def upgrade() -> None:
    op.create_table(
        "endpoint_reviews",
        sa.Column("endpoint_id", sa.String(64), primary_key=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("changed_by", sa.String(200), nullable=False),
        sa.Column("changed_at", sa.String(40), nullable=False),
        sa.Column("registered_by", sa.String(200), nullable=True),
    )
    op.create_table(
        "endpoint_checks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("endpoint_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("latency_ms", sa.Integer, nullable=True),
        sa.Column("result", sa.Text, nullable=False),
    )
    op.create_index("ix_endpoint_checks_endpoint_id", "endpoint_checks", ["endpoint_id"])


def downgrade() -> None:
    op.drop_table("endpoint_checks")
    op.drop_table("endpoint_reviews")
