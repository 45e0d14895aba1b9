"""Database triggers that refuse UPDATE and DELETE on audit events, for every client of the database.

PostgreSQL also refuses TRUNCATE of a non-empty table (an empty one loses nothing, and the test
runner truncates every table between transactional tests). The error is an integrity error on both
vendors (SQLSTATE 23001 restrict_violation; SQLite's RAISE(ABORT) is SQLITE_CONSTRAINT_TRIGGER).

SQLite drops a table's triggers whenever a migration rebuilds the table (most AlterField/AddField
operations there do), so a later migration that alters this table must create them again.
"""

from django.core.exceptions import ImproperlyConfigured
from django.db import migrations

POSTGRESQL_CREATE = [
    """
    CREATE FUNCTION audit_auditevent_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'audit events are append-only (% refused)', TG_OP USING ERRCODE = 'restrict_violation';
    END
    $$
    """,
    """
    CREATE TRIGGER audit_auditevent_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_auditevent_refuse_change()
    """,
    """
    CREATE FUNCTION audit_auditevent_refuse_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF EXISTS (SELECT 1 FROM audit_auditevent) THEN
            RAISE EXCEPTION 'audit events are append-only (TRUNCATE refused)' USING ERRCODE = 'restrict_violation';
        END IF;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER audit_auditevent_no_truncate BEFORE TRUNCATE ON audit_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION audit_auditevent_refuse_truncate()
    """,
]
POSTGRESQL_DROP = [
    "DROP TRIGGER IF EXISTS audit_auditevent_no_truncate ON audit_auditevent",
    "DROP FUNCTION IF EXISTS audit_auditevent_refuse_truncate()",
    "DROP TRIGGER IF EXISTS audit_auditevent_no_update_or_delete ON audit_auditevent",
    "DROP FUNCTION IF EXISTS audit_auditevent_refuse_change()",
]
SQLITE_CREATE = [
    """
    CREATE TRIGGER audit_auditevent_no_update BEFORE UPDATE ON audit_auditevent
    BEGIN SELECT RAISE(ABORT, 'audit events are append-only (UPDATE refused)'); END
    """,
    """
    CREATE TRIGGER audit_auditevent_no_delete BEFORE DELETE ON audit_auditevent
    BEGIN SELECT RAISE(ABORT, 'audit events are append-only (DELETE refused)'); END
    """,
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS audit_auditevent_no_update",
    "DROP TRIGGER IF EXISTS audit_auditevent_no_delete",
]


def _run(schema_editor, statements_by_vendor):
    vendor = schema_editor.connection.vendor
    if vendor not in statements_by_vendor:
        # Settings accept only these two databases; anything else must not migrate without its triggers.
        raise ImproperlyConfigured(f"The audit log supports PostgreSQL and SQLite, not {vendor}.")
    for sql in statements_by_vendor[vendor]:
        # params=None: the statements contain '%' (plpgsql format strings), not query placeholders.
        schema_editor.execute(sql, params=None)


def create_triggers(apps, schema_editor):
    _run(schema_editor, {"postgresql": POSTGRESQL_CREATE, "sqlite": SQLITE_CREATE})


def drop_triggers(apps, schema_editor):
    _run(schema_editor, {"postgresql": POSTGRESQL_DROP, "sqlite": SQLITE_DROP})


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_events")]

    operations = [migrations.RunPython(create_triggers, drop_triggers)]
