"""Audit: indexes that keep the flag queries' cost flat as a practitioner's history grows.

Every ``lookup.requested`` reads the trail for its flags (``federator.audit.history``).
Two of those reads walked a practitioner's whole history:

- ``repeat_lookups`` counts one practitioner's lookups of one child in the last
  day. With only the child index and the actor index (actor, event, at), SQLite
  chose the actor index and walked every lookup the practitioner made that day
  (1.3 ms at 2,000). On (child, event, actor, at) the count reads only that
  child's rows by that practitioner; the child's organisations (child, event)
  and subject access (child) use its first columns, so the old single-column
  child index is dropped.
- ``no_match_streak`` reads the practitioner's last few ``lookup.completed``
  records, newest first by (at, seq). PostgreSQL's actor index had no ``seq``,
  so it read every completed record the practitioner ever made and sorted them
  (2.4 ms at 2,200). With ``seq`` in the index the scan stops after the few it
  needs. (SQLite's indexes end with the rowid, which ``seq`` is, already.)

Revision ID: 0004_audit_flag_indexes
Revises: 0003_registry
"""

from alembic import op

revision = "0004_audit_flag_indexes"
down_revision = "0003_registry"


def upgrade() -> None:
    op.create_index("ix_audit_records_child_actor", "audit_records",
                    ["child_pseudonym", "event", "actor_id", "at"])
    op.drop_index("ix_audit_records_child_pseudonym", "audit_records")
    op.create_index("ix_audit_records_actor_seq", "audit_records",
                    ["actor_id", "event", "at", "seq"])
    op.drop_index("ix_audit_records_actor", "audit_records")


def downgrade() -> None:
    op.create_index("ix_audit_records_actor", "audit_records", ["actor_id", "event", "at"])
    op.drop_index("ix_audit_records_actor_seq", "audit_records")
    op.create_index("ix_audit_records_child_pseudonym", "audit_records", ["child_pseudonym"])
    op.drop_index("ix_audit_records_child_actor", "audit_records")
