"""Pauses on entering pairing codes after too many that did not work (see linking.services.guessing)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class CodeEntryLockoutQuerySet(models.QuerySet):
    def active(self, now=None):
        return self.filter(lifted_at__isnull=True, until__gt=now or timezone.now())

    def ended(self, now=None):
        return self.filter(Q(lifted_at__isnull=False) | Q(until__lte=now or timezone.now()))


class CodeEntryLockout(models.Model):
    """Code entry paused for one parent account, one network address, or everyone.

    Made by the worker when it records the code failure that reaches a limit; lifted by time or by
    staff. Accounts and addresses stop entering codes; a pause for everyone only slows redemption
    down (codes are saved and wait), so that an attacker cannot lock every family out.
    """

    class Scope(models.TextChoices):
        ACCOUNT = "account", _("Parent account")
        ADDRESS = "address", _("Network address")
        EVERYONE = "everyone", _("Everyone")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    scope = models.CharField(max_length=16, choices=Scope.choices)
    parent = models.ForeignKey(
        "linking.Parent", null=True, blank=True, on_delete=models.CASCADE, related_name="code_entry_lockouts"
    )
    address = models.GenericIPAddressField(null=True, blank=True)
    # Codes that did not work within the window when the limit was reached.
    failures = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    until = models.DateTimeField()
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    lifted_at = models.DateTimeField(null=True, blank=True)

    objects = CodeEntryLockoutQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["scope", "until"])]
        constraints = [
            models.CheckConstraint(
                name="code_entry_lockout_names_its_scope",
                condition=Q(scope="account", parent__isnull=False, address__isnull=True)
                | Q(scope="address", parent__isnull=True, address__isnull=False)
                | Q(scope="everyone", parent__isnull=True, address__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"code entry lockout {self.id} ({self.scope} until {self.until:%Y-%m-%d %H:%M})"

    @property
    def is_active(self) -> bool:
        return self.lifted_at is None and self.until > timezone.now()
