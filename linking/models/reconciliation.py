"""Reconciliation runs and the drift they find between the portal and Canvas."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from .families import ObservationLink, Parent, Student


class ReconciliationRun(models.Model):
    """One comparison of the portal's links with Canvas: nightly from beat (``requested_by`` null), or
    on demand by staff. The row is the outbox of its task, claimed queued → running."""

    class State(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    UNFINISHED_STATES = (State.QUEUED, State.RUNNING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # parents_checked, students_checked, missing_in_portal, missing_in_canvas, canvas_calls
    counts = models.JSONField(default=dict, blank=True)
    failure = models.CharField(max_length=255, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "updated_at"])]

    def __str__(self) -> str:
        return f"reconciliation run {self.id} ({self.state})"

    @property
    def is_unfinished(self) -> bool:
        return self.state in self.UNFINISHED_STATES


class Drift(models.Model):
    """A difference between the portal's links and Canvas that a run found, until staff resolve it.

    ``in_canvas_only``: Canvas links an observer and a student the portal has no current link for. The
    observer may be no portal parent and the student unknown to the portal, so Canvas ids and names
    are kept beside the nullable foreign keys. ``in_portal_only``: a current ObservationLink that
    Canvas no longer has.
    """

    class Kind(models.TextChoices):
        IN_CANVAS_ONLY = "in_canvas_only", _("In Canvas, not in the portal")
        IN_PORTAL_ONLY = "in_portal_only", _("In the portal, gone from Canvas")

    class State(models.TextChoices):
        OPEN = "open", _("Open")
        ADOPTED = "adopted", _("Adopted")
        MARKED_REMOVED = "marked_removed", _("Marked removed")
        RELINKING = "relinking", _("Being linked again")
        RELINKED = "relinked", _("Linked again")
        DISMISSED = "dismissed", _("Dismissed")
        # A later run found the truth anew; its own drift replaces this.
        SUPERSEDED = "superseded", _("Superseded by a later run")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    run = models.ForeignKey(ReconciliationRun, on_delete=models.CASCADE, related_name="drift")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN)
    parent = models.ForeignKey(Parent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    canvas_observer_id = models.PositiveBigIntegerField()
    observer_name = models.CharField(max_length=255, blank=True)
    student = models.ForeignKey(Student, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    canvas_student_id = models.PositiveBigIntegerField()
    student_name = models.CharField(max_length=255, blank=True)
    observation_link = models.ForeignKey(
        ObservationLink, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    root_account_ids = models.JSONField(default=list, blank=True)
    # Why the last relink did not happen (a hold placed meanwhile, Canvas refused).
    failure = models.CharField(max_length=255, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["kind", "student_name", "observer_name"]
        indexes = [models.Index(fields=["state", "kind"])]

    def __str__(self) -> str:
        return f"{self.kind} drift {self.id} ({self.state})"
