"""What school staff set and keep: the link policy, holds on pairs, and the courses letters are printed for."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .families import Student


class Course(models.Model):
    """A Canvas course as the portal last read it, with its students: for filters and family letters."""

    canvas_course_id = models.PositiveBigIntegerField(unique=True)
    name = models.CharField(max_length=255)
    course_code = models.CharField(max_length=255, blank=True)
    sis_course_id = models.CharField(max_length=255, blank=True)
    # The Canvas (sub-)account the course belongs to: the school.
    account_id = models.PositiveBigIntegerField(null=True, blank=True)
    students = models.ManyToManyField(Student, related_name="courses", blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class PairHold(models.Model):
    """Staff forbid any link between this parent and this student (a court order, say).

    Every path that links honours it: self-service codes, staff links, bulk imports, adoption.
    The parent is named by email so a hold also covers a parent who has no portal account yet.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    student = models.ForeignKey(Student, on_delete=models.CASCADE, related_name="holds")
    parent_email = models.EmailField()
    reason = models.TextField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    lifted_at = models.DateTimeField(null=True, blank=True)
    lift_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["student", "parent_email"],
                condition=Q(lifted_at__isnull=True),
                name="one_active_hold_per_pair",
            )
        ]

    def __str__(self) -> str:
        return f"hold on {self.parent_email} and {self.student}"

    def save(self, *args, **kwargs):
        self.parent_email = self.parent_email.strip().lower()
        super().save(*args, **kwargs)

    @property
    def is_active(self) -> bool:
        return self.lifted_at is None


class LinkPolicy(models.Model):
    """The school's link policy, one row, set by a staff admin."""

    class Mode(models.TextChoices):
        AT_ONCE = "at_once", _("Link at once")
        HOLD_ALL = "hold_all", _("Hold every request for review")
        RULES = "rules", _("Hold only when a rule fires")

    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.AT_ONCE)
    max_observers = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text=_("Hold when the student already has this many linked parents.")
    )
    watched_domains = models.TextField(
        blank=True, help_text=_("Hold when the parent's email is at one of these domains (one per line).")
    )
    hold_flagged_students = models.BooleanField(default=True)
    # Personal data in closed requests older than this many days is anonymised in the audit log.
    retention_days = models.PositiveIntegerField(null=True, blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        permissions = [
            ("review_link_requests", "Can review link requests, revoke links and hold pairs"),
            ("manage_staff", "Can set the link policy and manage staff accounts"),
        ]

    def __str__(self) -> str:
        return f"link policy ({self.mode})"

    @classmethod
    def current(cls) -> LinkPolicy:
        policy, _ = cls.objects.get_or_create(pk=1)
        return policy

    def watched_domain_set(self) -> set[str]:
        return {line.strip().lower().lstrip("@") for line in self.watched_domains.splitlines() if line.strip()}
