"""Move PostgreSQL's Site id sequence past the site 0002 saved with an explicit id.

An explicit pk leaves the sequence behind, so the next Site added (in the admin) collided with it.
Django's own default site resets the sequence the same way (django.contrib.sites.management). A
separate migration, so that databases made before it are put right too.
"""

from django.core.management.color import no_style
from django.db import migrations


def site_id_sequence_reset(apps, schema_editor):
    Site = apps.get_model("sites", "Site")
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        for statement in connection.ops.sequence_reset_sql(no_style(), [Site]):
            cursor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("linking", "0007_code_entry_lockouts"),
        ("sites", "0002_alter_domain_unique"),
    ]

    operations = [
        migrations.RunPython(site_id_sequence_reset, migrations.RunPython.noop),
    ]
