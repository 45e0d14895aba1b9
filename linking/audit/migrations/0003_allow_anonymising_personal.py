"""Let the append-only triggers allow exactly one UPDATE: blanking ``personal`` to ``{}`` (anonymisation).

Every other column must stay as it was, and the new ``personal`` must be the empty object; any other
UPDATE, every DELETE and (PostgreSQL) TRUNCATE of a non-empty table are still refused. ``personal``
enters the hash chain only through ``personal_digest``, so the chain stays verifiable afterwards.

PostgreSQL compares the whole row as jsonb minus ``personal``, which also covers columns added later.
SQLite has no such row value, so its trigger names the columns (``SQLITE_UNCHANGED_COLUMNS``; a test
checks the list against the model). Django stores a JSONField on SQLite as text written by
``json.dumps``, so the empty object arrives as exactly ``'{}'``; any other spelling is refused.
"""

from django.core.exceptions import ImproperlyConfigured
from django.db import migrations

SQLITE_UNCHANGED_COLUMNS = (
    "id",
    "created_at",
    "actor_id",
    "actor_label",
    "action",
    "subject",
    "canvas_calls",
    "outcome",
    "data",
    "personal_digest",
    "prev_hash",
    "hash",
)

POSTGRESQL_ALLOW_ANONYMISING = """
    CREATE OR REPLACE FUNCTION audit_auditevent_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE'
           AND NEW.personal = '{}'::jsonb
           AND (to_jsonb(NEW) - 'personal') = (to_jsonb(OLD) - 'personal') THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'audit events are append-only (% refused; only blanking personal is allowed)', TG_OP
            USING ERRCODE = 'restrict_violation';
    END
    $$
"""
POSTGRESQL_REFUSE_EVERY_CHANGE = """
    CREATE OR REPLACE FUNCTION audit_auditevent_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'audit events are append-only (% refused)', TG_OP USING ERRCODE = 'restrict_violation';
    END
    $$
"""

_unchanged = " AND ".join(f"NEW.{column} IS OLD.{column}" for column in SQLITE_UNCHANGED_COLUMNS)
SQLITE_CREATE = [
    "DROP TRIGGER IF EXISTS audit_auditevent_no_update",
    f"""
    CREATE TRIGGER audit_auditevent_update_only_anonymises BEFORE UPDATE ON audit_auditevent
    WHEN NOT (NEW.personal IS '{{}}' AND {_unchanged})
    BEGIN
        SELECT RAISE(ABORT, 'audit events are append-only (UPDATE refused; only blanking personal is allowed)');
    END
    """,
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS audit_auditevent_update_only_anonymises",
    """
    CREATE TRIGGER audit_auditevent_no_update BEFORE UPDATE ON audit_auditevent
    BEGIN SELECT RAISE(ABORT, 'audit events are append-only (UPDATE refused)'); END
    """,
]


def _run(schema_editor, statements_by_vendor):
    vendor = schema_editor.connection.vendor
    if vendor not in statements_by_vendor:
        # Settings accept only these two databases; anything else must not migrate without its triggers.
        raise ImproperlyConfigured(f"The audit log supports PostgreSQL and SQLite, not {vendor}.")
    for sql in statements_by_vendor[vendor]:
        # params=None: the statements contain '%' (plpgsql format strings), not query placeholders.
        schema_editor.execute(sql, params=None)


def allow_anonymising(apps, schema_editor):
    _run(schema_editor, {"postgresql": [POSTGRESQL_ALLOW_ANONYMISING], "sqlite": SQLITE_CREATE})


def refuse_every_update(apps, schema_editor):
    _run(schema_editor, {"postgresql": [POSTGRESQL_REFUSE_EVERY_CHANGE], "sqlite": SQLITE_DROP})


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_append_only_triggers")]

    operations = [migrations.RunPython(allow_anonymising, refuse_every_update)]
