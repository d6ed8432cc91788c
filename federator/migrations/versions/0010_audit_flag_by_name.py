"""Audit: the flagged records of one flag, newest first, without walking every flag.

``audit_flags`` is keyed (seq, flag): finding the latest records of one flag
(the auditors' alerts, ``federator.audit.alerts``, on every auditor page) walked
every flagged record from the newest back until enough of that flag turned up.
With (flag, seq) it reads only those.

Revision ID: 0010_audit_flag_by_name
Revises: 0009_endpoint_policy
"""

from alembic import op

revision = "0010_audit_flag_by_name"
down_revision = "0009_endpoint_policy"


def upgrade() -> None:
    op.create_index("ix_audit_flags_flag_seq", "audit_flags", ["flag", "seq"])


def downgrade() -> None:
    op.drop_index("ix_audit_flags_flag_seq", "audit_flags")
