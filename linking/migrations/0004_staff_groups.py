"""The two staff roles as groups: "School staff" review; "Staff admin" also manage staff and policy.

Permissions are normally made by post_migrate, after every migration has run, so on a fresh database
they do not exist yet here: they are created if missing, as post_migrate would make them.
"""

from django.db import migrations

PERMISSIONS = {
    "review_link_requests": "Can review link requests, revoke links and hold pairs",
    "manage_staff": "Can set the link policy and manage staff accounts",
}
GROUPS = {
    "School staff": ["review_link_requests"],
    "Staff admin": ["review_link_requests", "manage_staff"],
}


def create_groups(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    db = schema_editor.connection.alias
    content_type, _ = ContentType.objects.using(db).get_or_create(app_label="linking", model="linkpolicy")
    permissions = {
        codename: Permission.objects.using(db).get_or_create(
            content_type=content_type, codename=codename, defaults={"name": name}
        )[0]
        for codename, name in PERMISSIONS.items()
    }
    for group_name, codenames in GROUPS.items():
        group, _ = Group.objects.using(db).get_or_create(name=group_name)
        group.permissions.add(*(permissions[codename] for codename in codenames))


def remove_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.using(schema_editor.connection.alias).filter(name__in=GROUPS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("linking", "0003_staff_console"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
