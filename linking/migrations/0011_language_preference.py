"""One saved language a user (LanguagePreference), for parents, students and staff alike.

A parent's language was Parent.locale; it moves to the new table, so that a parent's language and the
one the switch in the header saves are one value.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

SPOKEN = {"en", "es"}  # settings.LANGUAGES when this migration was written


def parent_locales_copy(apps, schema_editor):
    Parent = apps.get_model("linking", "Parent")
    LanguagePreference = apps.get_model("linking", "LanguagePreference")
    saved = []
    for user_id, locale in Parent.objects.exclude(locale="").values_list("user_id", "locale").iterator():
        language = locale.lower().split("-")[0].split("_")[0]
        if language in SPOKEN:
            saved.append(LanguagePreference(user_id=user_id, language=language))
    LanguagePreference.objects.bulk_create(saved, batch_size=1000)


def parent_locales_restore(apps, schema_editor):
    Parent = apps.get_model("linking", "Parent")
    LanguagePreference = apps.get_model("linking", "LanguagePreference")
    for user_id, language in LanguagePreference.objects.values_list("user_id", "language").iterator():
        Parent.objects.filter(user_id=user_id).update(locale=language)


class Migration(migrations.Migration):
    dependencies = [
        ("linking", "0010_search_trigram_indexes"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="LanguagePreference",
            fields=[
                (
                    "user",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="language_preference",
                        serialize=False,
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                ("language", models.CharField(max_length=16)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
        ),
        migrations.RunPython(parent_locales_copy, parent_locales_restore),
        migrations.RemoveField(model_name="parent", name="locale"),
    ]
