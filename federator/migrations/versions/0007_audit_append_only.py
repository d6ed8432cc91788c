"""Audit: the trail's tables refuse UPDATE, DELETE and TRUNCATE.

Nothing in the broker changes or removes an audit row: records, checkpoints
and the filter tables beside them are only ever inserted. Triggers make the
database hold to that, so a bug or a stray statement cannot rewrite the trail
quietly; an insider who owns the tables can still drop the triggers, which is
what the signed checkpoints held outside (witnesses) are for. On PostgreSQL
give the application a role with SELECT and INSERT only (docs/audit.md).

Revision ID: 0007_audit_append_only
Revises: 0006_check_target
"""

from alembic import op

revision = "0007_audit_append_only"
down_revision = "0006_check_target"

TABLES = ("audit_records", "audit_checkpoints", "audit_authorities", "audit_flags",
          "audit_child_refs")
FUNCTION = "federator_audit_append_only"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
            CREATE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'the audit trail is append-only: % on % is refused',
                    TG_OP, TG_TABLE_NAME
                    USING ERRCODE = 'insufficient_privilege';
            END
            $$""")
        for table in TABLES:
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE "
                       f"ON {table} FOR EACH ROW EXECUTE FUNCTION {FUNCTION}()")
            op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE "
                       f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()")
        return
    for table in TABLES:  # SQLite has no TRUNCATE: DELETE without WHERE fires these
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only: "
                f"{action} on {table} is refused'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER {table}_no_truncate ON {table}")
        op.execute(f"DROP FUNCTION {FUNCTION}()")
        return
    for table in TABLES:
        for action in ("update", "delete"):
            op.execute(f"DROP TRIGGER {table}_no_{action}")
