"""Registry: an endpoint's policy (fhir-r4: sensitive value set, restricted labels,
the route for a restricted record; docs/fhir.md).

``endpoints.policy`` is JSON (``federator.registry.policy.canonical``); none means
the documented defaults. Endpoints kept from before this revision have none.

Revision ID: 0009_endpoint_policy
Revises: 0008_review_role
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_endpoint_policy"
down_revision = "0008_review_role"


def upgrade() -> None:
    op.add_column("endpoints", sa.Column("policy", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("endpoints") as batch:
        batch.drop_column("policy")
