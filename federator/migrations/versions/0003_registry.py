"""Registry: what the registry issue needs.

Revision ID: 0003_registry
Revises: 0002_audit
"""

revision = "0003_registry"
down_revision = "0002_audit"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
