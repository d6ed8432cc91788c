"""Audit trail: checkpoints and what the audit issue needs.

Revision ID: 0002_audit
Revises: 0001
"""

revision = "0002_audit"
down_revision = "0001"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
