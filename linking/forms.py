"""Forms for parents and students.

This module is imported by allauth while it builds its own signup form (ACCOUNT_SIGNUP_FORM_CLASS), so
it must not import allauth's forms itself.
"""

from __future__ import annotations

import re

from django import forms
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from linking.services.people import parent_register


class ParentSignupForm(forms.Form):
    """The parent's name, added to allauth's signup form (email, password)."""

    # allauth appends this form's fields after its own; the name reads best first.
    field_order = ["name", "email", "password1"]

    name = forms.CharField(
        label=_("Your full name"),
        max_length=255,
        help_text=_("As the school knows you. It is also your name in Canvas."),
        widget=forms.TextInput(attrs={"autocomplete": "name", "autocapitalize": "words"}),
    )

    def signup(self, request: HttpRequest, user: AbstractBaseUser) -> None:
        # The language the parent reads the portal in (their browser's, via LocaleMiddleware) is the
        # one the school's emails to them use.
        locale = translation.get_supported_language_variant(translation.get_language() or settings.LANGUAGE_CODE)
        parent_register(user=user, name=self.cleaned_data["name"], locale=locale)


# -- parents: adding children ---------------------------------------------------------------------
CODE_PATTERN = re.compile(r"^[A-Za-z0-9]{6}$")
CODE_SEPARATORS = re.compile(r"[\s,;]+")
LOOK_ALIKE_CHARACTERS = set("Il1O0o")
MAX_CODES_AT_ONCE = 10


class AddChildForm(forms.Form):
    """One or several pairing codes, one per child. Case is kept: Canvas codes are case-sensitive."""

    codes = forms.CharField(
        label=_("Pairing code"),
        help_text=_(
            "The 6-character code your child gave you. Capitals matter. "
            "Linking several children? Enter one code per child, separated by spaces."
        ),
        max_length=200,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "off",
                "autocapitalize": "off",
                "autocorrect": "off",
                "spellcheck": "false",
                "class": "code-input",
            }
        ),
    )

    def clean_codes(self) -> list[str]:
        raw = self.cleaned_data["codes"]
        codes = list(dict.fromkeys(part for part in CODE_SEPARATORS.split(raw.strip()) if part))
        if not codes:
            raise ValidationError(_("Enter the code your child gave you."))
        wrong = [code for code in codes if not CODE_PATTERN.fullmatch(code)]
        if wrong:
            raise ValidationError(
                _("“%(code)s” is not a pairing code: codes are 6 letters and digits, like aB3xZ9."),
                params={"code": wrong[0][:20]},
            )
        if len(codes) > MAX_CODES_AT_ONCE:
            raise ValidationError(_("Enter at most %(max)d codes at once."), params={"max": MAX_CODES_AT_ONCE})
        return codes

    def look_alike_codes(self) -> list[str]:
        """Valid codes holding characters people mix up (I, l, 1, O, 0, o): worth a second look."""
        return [code for code in self.cleaned_data.get("codes", []) if LOOK_ALIKE_CHARACTERS & set(code)]


class EmailCodeForm(forms.Form):
    email = forms.EmailField(
        label=_("Your parent's email address"),
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
