"""Name the portal's Site: allauth puts its name in emails and pages ("example.com" until now)."""

from urllib.parse import urlsplit

from django.conf import settings
from django.db import migrations


def site_name(apps, schema_editor):
    Site = apps.get_model("sites", "Site")
    domain = urlsplit(settings.PORTAL_BASE_URL).netloc
    Site.objects.update_or_create(pk=settings.SITE_ID, defaults={"name": "Family Portal", "domain": domain})


class Migration(migrations.Migration):
    dependencies = [
        ("linking", "0001_families"),
        ("sites", "0002_alter_domain_unique"),
    ]

    operations = [
        migrations.RunPython(site_name, migrations.RunPython.noop),
    ]
