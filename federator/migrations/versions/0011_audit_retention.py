"""Audit: retention (pruning old bodies) and redaction (of sealed free text).

Two columns on ``audit_records``:

- ``texts``: the free text a record seals (format 2, ``federator.audit.redaction``):
  ``{"purpose": {"salt": …, "text": …}, …}``. The hashed body holds only each
  text's salted hash (``sealed``); redacting a text replaces its entry here with
  ``{"redacted": R}``, R the ``audit.redacted`` record that says who, when and why.
- ``leaf``: the record's RFC 9162 leaf hash, kept when its body is pruned (the body
  becomes ``''``), so the Merkle tree and the chain's links still verify.

The append-only triggers of 0007 stay for everything else; an UPDATE of
``audit_records`` now passes only in exactly two shapes, each of which needs an
audit record that says so, written first:

- a prune: body to ``''``, texts and the filter columns to NULL, ``leaf`` set (on
  PostgreSQL checked to be the leaf hash of the old body), nothing else changed,
  and an ``audit.pruned`` record later in the trail whose range covers it and whose
  cut-off (``before``) is after the record was written;
- a redaction: one entry of ``texts`` replaced by ``{"redacted": R}``, nothing
  else changed, R an ``audit.redacted`` record later in the trail naming this
  record and field, and the text still there.

Rows of the filter tables (authorities, flags, child references) may be deleted
only for a pruned record. On PostgreSQL the application role is given UPDATE on
``audit_records.texts`` only (docs/audit.md), so it can redact (leaving the
record) and not prune; the owner role prunes.

Revision ID: 0011_audit_retention
Revises: 0010_audit_flag_by_name
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_audit_retention"
down_revision = "0010_audit_flag_by_name"

INDEX_TABLES = ("audit_authorities", "audit_flags", "audit_child_refs")
#: The filter columns a prune empties (at and event stay: when, and what kind).
EMPTIED = ("lookup_id", "actor_id", "actor_role", "actor_organisation", "purpose",
           "basis_type", "child_pseudonym")
GUARD = "federator_audit_guard"
INDEX_GUARD = "federator_audit_index_guard"
REFUSE = "federator_audit_append_only"  # 0007's


def _pg_upgrade() -> None:
    emptied = ", ".join(f"'{c}'" for c in ("body", "texts", "leaf", *EMPTIED))
    nulls = " AND ".join(f"NEW.{c} IS NULL" for c in EMPTIED)
    op.execute(f"""
        CREATE FUNCTION {GUARD}() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            field text;
        BEGIN
            IF TG_OP = 'UPDATE' AND OLD.body <> '' AND NEW.body = '' AND OLD.leaf IS NULL
               AND NEW.texts IS NULL AND {nulls}
               AND NEW.leaf = encode(sha256('\\x00'::bytea || convert_to(OLD.body, 'UTF8')),
                                     'hex')
               AND (to_jsonb(NEW) - ARRAY[{emptied}]) = (to_jsonb(OLD) - ARRAY[{emptied}])
               AND EXISTS (SELECT 1 FROM audit_records p
                           WHERE p.event = 'audit.pruned' AND p.seq > OLD.seq AND p.body <> ''
                             AND (p.body::jsonb ->> 'first')::bigint <= OLD.seq
                             AND (p.body::jsonb ->> 'last')::bigint >= OLD.seq
                             AND OLD.at < (p.body::jsonb ->> 'before')) THEN
                RETURN NEW;  -- a prune, recorded by the audit.pruned record
            END IF;
            IF TG_OP = 'UPDATE' AND OLD.body <> '' AND OLD.texts IS NOT NULL
               AND NEW.texts IS NOT NULL
               AND (to_jsonb(NEW) - 'texts') = (to_jsonb(OLD) - 'texts') THEN
                SELECT p.body::jsonb ->> 'field' INTO field FROM audit_records p
                 WHERE p.event = 'audit.redacted' AND p.seq > OLD.seq AND p.body <> ''
                   AND (p.body::jsonb ->> 'record')::bigint = OLD.seq
                   AND ((OLD.texts::jsonb -> (p.body::jsonb ->> 'field')) ? 'text')
                   AND NEW.texts::jsonb = jsonb_set(OLD.texts::jsonb,
                         ARRAY[p.body::jsonb ->> 'field'], jsonb_build_object('redacted', p.seq))
                 LIMIT 1;
                IF field IS NOT NULL THEN
                    RETURN NEW;  -- a redaction, recorded by the audit.redacted record
                END IF;
            END IF;
            RAISE EXCEPTION 'the audit trail is append-only: % on % is refused',
                TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
        END
        $$""")
    op.execute(f"""
        CREATE FUNCTION {INDEX_GUARD}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' AND EXISTS (SELECT 1 FROM audit_records r
                                             WHERE r.seq = OLD.seq AND r.body = '') THEN
                RETURN OLD;  -- the filter rows of a pruned record
            END IF;
            RAISE EXCEPTION 'the audit trail is append-only: % on % is refused',
                TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
        END
        $$""")
    op.execute("DROP TRIGGER audit_records_append_only ON audit_records")
    op.execute(f"CREATE TRIGGER audit_records_append_only BEFORE DELETE ON audit_records "
               f"FOR EACH ROW EXECUTE FUNCTION {REFUSE}()")
    op.execute(f"CREATE TRIGGER audit_records_guard BEFORE UPDATE ON audit_records "
               f"FOR EACH ROW EXECUTE FUNCTION {GUARD}()")
    for table in INDEX_TABLES:
        op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
        op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE ON {table} "
                   f"FOR EACH ROW EXECUTE FUNCTION {REFUSE}()")
        op.execute(f"CREATE TRIGGER {table}_guard BEFORE DELETE ON {table} "
                   f"FOR EACH ROW EXECUTE FUNCTION {INDEX_GUARD}()")


def _same(columns: tuple[str, ...]) -> str:
    return " AND ".join(f"NEW.{c} IS OLD.{c}" for c in columns)


def _sqlite_upgrade() -> None:
    kept = ("seq", "at", "event", "prev_hash", "hash")
    nulls = " AND ".join(f"NEW.{c} IS NULL" for c in EMPTIED)
    prune = (f"OLD.body <> '' AND NEW.body = '' AND OLD.leaf IS NULL AND NEW.leaf IS NOT NULL "
             f"AND length(NEW.leaf) = 64 AND NEW.texts IS NULL AND {nulls} AND {_same(kept)} "
             "AND EXISTS (SELECT 1 FROM audit_records p WHERE p.event = 'audit.pruned' "
             "AND p.seq > OLD.seq AND p.body <> '' "
             "AND json_extract(p.body, '$.first') <= OLD.seq "
             "AND json_extract(p.body, '$.last') >= OLD.seq "
             "AND OLD.at < json_extract(p.body, '$.before'))")
    path = "'$.\"' || json_extract(p.body, '$.field') || '\"'"
    redact = (f"OLD.body <> '' AND OLD.texts IS NOT NULL "
              f"AND {_same(('body', 'leaf', *kept, *EMPTIED))} "
              "AND EXISTS (SELECT 1 FROM audit_records p WHERE p.event = 'audit.redacted' "
              "AND p.seq > OLD.seq AND p.body <> '' "
              "AND json_extract(p.body, '$.record') = OLD.seq "
              f"AND json_extract(OLD.texts, {path} || '.text') IS NOT NULL "
              f"AND NEW.texts IS json_set(OLD.texts, {path}, json_object('redacted', p.seq)))")
    op.execute("DROP TRIGGER audit_records_no_update")
    op.execute(f"CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records "
               f"WHEN NOT (({prune}) OR ({redact})) "
               "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only: "
               "UPDATE on audit_records is refused'); END")
    for table in INDEX_TABLES:
        op.execute(f"DROP TRIGGER {table}_no_delete")
        op.execute(f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
                   "WHEN NOT EXISTS (SELECT 1 FROM audit_records r "
                   "WHERE r.seq = OLD.seq AND r.body = '') "
                   "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only: "
                   f"DELETE on {table} is refused'); END")


def upgrade() -> None:
    op.add_column("audit_records", sa.Column("texts", sa.Text, nullable=True))
    op.add_column("audit_records", sa.Column("leaf", sa.String(64), nullable=True))
    # the pruned rows alone (an append never enters it): where the pruned range ends
    op.create_index("ix_audit_records_pruned", "audit_records", ["seq"],
                    postgresql_where=sa.text("body = ''"), sqlite_where=sa.text("body = ''"))
    if op.get_bind().dialect.name == "postgresql":
        _pg_upgrade()
    else:
        _sqlite_upgrade()


def downgrade() -> None:
    held = op.get_bind().execute(sa.text(
        "SELECT count(*) FROM audit_records WHERE texts IS NOT NULL OR leaf IS NOT NULL")
    ).scalar()
    if held:  # their free text, or a pruned record's leaf, would go: the trail would break
        raise RuntimeError(f"{held} audit records hold sealed free text or a pruned leaf: "
                           "0011_audit_retention cannot be undone without breaking the trail")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_records_guard ON audit_records")
        op.execute("DROP TRIGGER audit_records_append_only ON audit_records")
        op.execute(f"CREATE TRIGGER audit_records_append_only BEFORE UPDATE OR DELETE "
                   f"ON audit_records FOR EACH ROW EXECUTE FUNCTION {REFUSE}()")
        for table in INDEX_TABLES:
            op.execute(f"DROP TRIGGER {table}_guard ON {table}")
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE "
                       f"ON {table} FOR EACH ROW EXECUTE FUNCTION {REFUSE}()")
        op.execute(f"DROP FUNCTION {GUARD}()")
        op.execute(f"DROP FUNCTION {INDEX_GUARD}()")
    else:
        op.execute("DROP TRIGGER audit_records_no_update")
        op.execute("CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records "
                   "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only: "
                   "UPDATE on audit_records is refused'); END")
        for table in INDEX_TABLES:
            op.execute(f"DROP TRIGGER {table}_no_delete")
            op.execute(f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
                       "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only: "
                       f"DELETE on {table} is refused'); END")
    op.drop_index("ix_audit_records_pruned", "audit_records")
    # (SQLite 3.35+ drops a column in place: the guarded table is not rebuilt)
    op.execute("ALTER TABLE audit_records DROP COLUMN leaf")
    op.execute("ALTER TABLE audit_records DROP COLUMN texts")
