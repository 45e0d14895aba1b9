"""The language a person reads the portal in, and the one an email to them is written in."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.utils import translation

from linking.models import LanguagePreference, Parent


def is_spoken(language: str) -> bool:
    """Whether ``language`` is exactly one of the portal's languages (settings.LANGUAGES)."""
    return language in dict(settings.LANGUAGES)


def user_language_save(*, user: AbstractBaseUser, language: str) -> LanguagePreference:
    """Save ``language`` as the user's own: their next sign-in opens in it, and a parent's emails and
    Canvas account use it. Raises ValueError for a language the portal does not speak."""
    if not is_spoken(language):
        raise ValueError(f"the portal does not speak {language!r}")
    preference, _ = LanguagePreference.objects.update_or_create(user=user, defaults={"language": language})
    # Later reads through this user object (Parent.locale) see the new value, not a cached absence.
    user.language_preference = preference
    return preference


def email_language(*, recipient: Parent | None, sender_language: str = "") -> str:
    """The language to write to a parent or family in: the recipient's saved language when the portal
    knows it, else the language the sender was using, else the portal's default."""
    for language in (recipient.locale if recipient is not None else "", sender_language):
        if is_spoken(language):
            return language
    return translation.get_supported_language_variant(settings.LANGUAGE_CODE)


def parent_with_email(email: str) -> Parent | None:
    """The portal parent whose account has this email address, if any (the oldest, should two share it)."""
    return (
        Parent.objects.filter(user__email__iexact=email.strip())
        .select_related("user__language_preference")
        .order_by("pk")
        .first()
    )
