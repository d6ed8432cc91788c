"""Registry: what each conformance check tested.

``endpoint_checks.target`` is ``federator.registry.rules.connection_target`` of
the endpoint when it was checked (its protocol, URL and encrypted credentials).
A broker admin can approve an endpoint only when its last conformance check
passed with the target it has now: checks kept from before this revision have
none, so those endpoints are tested again before they are approved.

Revision ID: 0006_check_target
Revises: 0005_audit_child_refs
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_check_target"
down_revision = "0005_audit_child_refs"


def upgrade() -> None:
    op.add_column("endpoint_checks", sa.Column("target", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("endpoint_checks") as batch:
        batch.drop_column("target")
