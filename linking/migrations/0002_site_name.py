"""Name the portal's Site: allauth puts its name in emails and pages ("example.com" until now)."""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.color import no_style
from django.db import migrations


def site_name(apps, schema_editor):
    Site = apps.get_model("sites", "Site")
    domain = urlsplit(settings.PORTAL_BASE_URL).netloc
    Site.objects.update_or_create(pk=settings.SITE_ID, defaults={"name": "Family Portal", "domain": domain})
    # An explicit pk leaves PostgreSQL's sequence behind, and the next Site added (in the admin) would
    # collide with this one; Django's own default site resets it the same way (sites.management).
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        for statement in connection.ops.sequence_reset_sql(no_style(), [Site]):
            cursor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("linking", "0001_families"),
        ("sites", "0002_alter_domain_unique"),
    ]

    operations = [
        migrations.RunPython(site_name, migrations.RunPython.noop),
    ]
