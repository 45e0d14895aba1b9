"""Trigram indexes for the staff console's search (PostgreSQL only; SQLite searches without them).

Staff search link requests by a student's name or SIS id and a parent's name or email, anywhere in the
text, without regard to case: Django asks ``UPPER(column::text) LIKE UPPER('%term%')``, which no b-tree
index serves. A GIN index of that expression's trigrams (pg_trgm) does, so a search reads the few people
who match instead of every row. Where the extension cannot be created (a database role without the right
to), the migration says so and leaves search as it was: correct, only slower on large tables.
"""

import logging

from django.conf import settings
from django.db import DatabaseError, migrations, transaction

logger = logging.getLogger(__name__)

# (index, model, column)
INDEXES = [
    ("linking_student_name_trgm", "linking.Student", "name"),
    ("linking_student_sis_trgm", "linking.Student", "sis_user_id"),
    ("linking_parent_name_trgm", "linking.Parent", "name"),
    ("linking_user_email_trgm", settings.AUTH_USER_MODEL, "email"),
]


def create(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError as exc:
        logger.warning("pg_trgm is not available (%s): staff search works without its indexes", exc)
        return
    quote = schema_editor.quote_name
    for index, model, column in INDEXES:
        table = apps.get_model(model)._meta.db_table
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {quote(index)} ON {quote(table)} "
            f"USING gin (UPPER({quote(column)}::text) gin_trgm_ops)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for index, _, _ in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(index)}")


class Migration(migrations.Migration):
    dependencies = [
        ("linking", "0009_review_queue_indexes"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [migrations.RunPython(create, drop)]
