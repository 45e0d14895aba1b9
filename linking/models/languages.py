"""The language each person reads the portal in: parents, students and staff alike."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import models


class LanguagePreference(models.Model):
    """The language a user chose (the switch in every page's header) or signed up in.

    One row a user, whatever their role. It becomes their session's language when they sign in; for a
    parent it is also the language of the school's emails to them and of the Canvas account the portal
    makes for them (``Parent.locale``). A user without a row gets the browser's language.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE, related_name="language_preference"
    )
    # A code from settings.LANGUAGES ("en", "es"); linking.services.languages refuses any other.
    language = models.CharField(max_length=16)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.user_id}: {self.language}"

    @classmethod
    def language_of(cls, user: AbstractBaseUser) -> str:
        """The user's saved language, or "" when they have none (reads the row at most once a user object)."""
        try:
            return user.language_preference.language
        except cls.DoesNotExist:
            return ""
