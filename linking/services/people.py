"""Students and parents as the portal knows them."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from linking.models import Parent, Student
from linking.services.languages import user_language_save


@transaction.atomic
def student_upsert_from_canvas(
    *, canvas_user_id: int, name: str, user: AbstractBaseUser | None = None, sis_user_id: str = ""
) -> Student:
    """The Student for a Canvas user, created or refreshed; attaches the portal user when given.

    Called when a student signs in with Canvas and when a link reveals a student's Canvas id.
    """
    student, created = Student.objects.select_for_update().get_or_create(
        canvas_user_id=canvas_user_id, defaults={"name": name, "user": user, "sis_user_id": sis_user_id}
    )
    if created:
        return student
    changed = []
    if name and student.name != name:
        student.name = name
        changed.append("name")
    if user is not None and student.user_id != user.pk:
        student.user = user
        changed.append("user")
    if sis_user_id and student.sis_user_id != sis_user_id:
        student.sis_user_id = sis_user_id
        changed.append("sis_user_id")
    if changed:
        student.save(update_fields=[*changed, "updated_at"])
    return student


@transaction.atomic
def parent_register(*, user: AbstractBaseUser, name: str, locale: str = "") -> Parent:
    """Make a signed-up portal user a parent (allauth's signup form calls this); ``locale``, the language
    they signed up in, becomes their saved language."""
    parent, _ = Parent.objects.update_or_create(user=user, defaults={"name": name.strip()})
    if locale:
        user_language_save(user=user, language=locale)
    return parent
