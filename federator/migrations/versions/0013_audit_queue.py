"""Audit: the queue appends go through on PostgreSQL (batch sequencing).

A writer commits its entry to ``audit_queue`` (with a flush: the durability
point of ``lookup.requested``, before any authority is asked) without holding
the trail's head; whichever writer then takes the head integrates every queued
entry (``federator.audit.batching``): numbered, chained, flagged and sealed as
before, the queue rows deleted in the statement that writes their records.
The queue is not covered by the append-only triggers of 0007 (it needs
DELETE); what an insider could do to an entry in its few milliseconds there is
in docs/audit.md ("How appends scale").

``audit_records.entry`` is the queue entry a record was integrated from (NULL
for records written directly): unique, so no entry becomes two records, and it
is how a writer whose entry another writer integrated finds its record. It is
not part of the hashed body.

``federator_audit_follow(key, entry, wait)`` (PostgreSQL) is a writer's one round
trip after queueing: it takes the head lock (a session lock, which the leader
releases after its commit) and says so, or waits for the writer holding it and
returns the record integrated from ``entry`` (no row: not integrated yet).

Revision ID: 0013_audit_queue
Revises: 0012_audit_tree
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_audit_queue"
down_revision = "0012_audit_tree"


def upgrade() -> None:
    op.create_table(
        "audit_queue",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("entry", sa.String(32), nullable=False, unique=True),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("event", sa.String(60), nullable=False),
        sa.Column("fields", sa.Text, nullable=False),  # JSON of the record's fields
    )
    op.add_column("audit_records", sa.Column("entry", sa.String(32), nullable=True))
    op.create_index("ix_audit_records_entry", "audit_records", ["entry"], unique=True)
    if op.get_bind().dialect.name == "postgresql":
        # Each statement of a volatile function reads with a snapshot of its own,
        # so the record is seen once the leader has committed and let go.
        op.execute("""
            CREATE FUNCTION federator_audit_follow(lock_key bigint, wanted varchar, wait boolean)
            RETURNS TABLE (lead boolean, body text, texts text, prev_hash varchar,
                           hash varchar)
            LANGUAGE plpgsql VOLATILE AS $$
            BEGIN
                IF wait THEN
                    PERFORM pg_advisory_lock(lock_key);
                ELSIF NOT pg_try_advisory_lock(lock_key) THEN
                    PERFORM pg_advisory_lock_shared(lock_key);
                    RETURN QUERY SELECT false, r.body, r.texts, r.prev_hash, r.hash
                        FROM audit_records r WHERE r.entry = wanted;
                    PERFORM pg_advisory_unlock_shared(lock_key);
                    RETURN;
                END IF;
                RETURN QUERY SELECT false, r.body, r.texts, r.prev_hash, r.hash
                    FROM audit_records r WHERE r.entry = wanted;
                IF FOUND THEN
                    PERFORM pg_advisory_unlock(lock_key);
                    RETURN;
                END IF;
                RETURN QUERY SELECT true, NULL::text, NULL::text, NULL::varchar,
                    NULL::varchar;
            END
            $$""")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION federator_audit_follow(bigint, varchar, boolean)")
    op.drop_index("ix_audit_records_entry", "audit_records")
    # Not batch mode on SQLite: it rebuilds the table, which the append-only triggers
    # on the other audit tables (0007) refer to; SQLite 3.35+ drops a column in place.
    op.execute("ALTER TABLE audit_records DROP COLUMN entry")
    op.drop_table("audit_queue")
