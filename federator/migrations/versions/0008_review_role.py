"""Registry: the role of whoever last reviewed an endpoint.

A broker admin's suspension (an authority misbehaving) must not be undone by
that authority's own admin: ``endpoint_reviews.changed_by_role`` says who
suspended it. Reviews kept from before this revision have none (an authority
admin may resume those, as before).

Revision ID: 0008_review_role
Revises: 0007_audit_append_only
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_review_role"
down_revision = "0007_audit_append_only"


def upgrade() -> None:
    op.add_column("endpoint_reviews", sa.Column("changed_by_role", sa.String(40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("endpoint_reviews") as batch:
        batch.drop_column("changed_by_role")
