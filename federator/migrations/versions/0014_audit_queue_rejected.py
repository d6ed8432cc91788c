"""Audit: a queued entry that cannot become a record is set aside, not retried for ever.

``audit_queue_rejected`` holds such an entry's queue row as it was (nothing is
lost), with the seq of the ``audit.entry_rejected`` record the integrator wrote
in its place and the reason (``federator.audit.queue_checks``). Before, one such
row (malformed JSON, a NUL, a time without its offset, a value longer than its
column, an entry id already a record's) failed every integrator's batch: the
trail stopped growing behind it.

Like ``audit_queue`` it is outside the append-only triggers (a prune removes
its rows with the records they stand for); what it holds is also summarised, by
hash, in the chained record.

Revision ID: 0014_audit_queue_rejected
Revises: 0013_audit_queue
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_audit_queue_rejected"
down_revision = "0013_audit_queue"


def upgrade() -> None:
    seq = sa.BigInteger().with_variant(sa.Integer, "sqlite")
    op.create_table(
        "audit_queue_rejected",
        # no key: nothing an insider plants here can make setting a row aside fail
        sa.Column("queue_id", seq, nullable=False),
        sa.Column("entry", sa.String(32), nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("event", sa.String(60), nullable=False),
        sa.Column("fields", sa.Text, nullable=False),
        sa.Column("seq", seq, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_index("ix_audit_queue_rejected_seq", "audit_queue_rejected", ["seq"])
    if op.get_bind().dialect.name == "postgresql":
        # A role that may queue entries (docs/audit.md's application role) may set
        # a rejected one aside: the integrator runs as that role.
        op.execute("""
            DO $$
            DECLARE grantee text;
            BEGIN
                FOR grantee IN SELECT DISTINCT g.grantee FROM information_schema.role_table_grants g
                    WHERE g.table_schema = current_schema() AND g.table_name = 'audit_queue'
                      AND g.privilege_type = 'INSERT' AND g.grantee <> current_user
                LOOP
                    EXECUTE format('GRANT SELECT, INSERT ON audit_queue_rejected TO %I', grantee);
                END LOOP;
            END
            $$""")


def downgrade() -> None:
    op.drop_index("ix_audit_queue_rejected_seq", "audit_queue_rejected")
    op.drop_table("audit_queue_rejected")
