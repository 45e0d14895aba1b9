"""Bulk family imports from the SIS: a run, and one row per family line of the file.

The run and every row are saved before any Canvas work starts (they are the outbox); workers claim
rows with a conditional update, so a run survives a crash, a pause or a cancel and resumes where it
stopped. A row records what it cost in Canvas calls and what came of it.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ImportRun(models.Model):
    class Source(models.TextChoices):
        UPLOAD = "upload", _("Uploaded in the console")
        COMMAND = "command", _("manage.py import_families")
        DROP_FOLDER = "drop_folder", _("Picked up from the drop folder")

    class Method(models.TextChoices):
        API = "api", _("Canvas API, row by row")
        SIS_IMPORT = "sis_import", _("Canvas SIS import")

    class State(models.TextChoices):
        CHECKING = "checking", _("Being checked")
        PREVIEW = "preview", _("Checked, not started")
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        PAUSED = "paused", _("Paused")
        CANCELLED = "cancelled", _("Cancelled")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    ACTIVE_STATES = (State.QUEUED, State.RUNNING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    source = models.CharField(max_length=16, choices=Source.choices)
    method = models.CharField(max_length=16, choices=Method.choices, default=Method.API)
    filename = models.CharField(max_length=255)
    # The same file again (a nightly export that did not change) is recognised, and makes nothing new.
    file_sha256 = models.CharField(max_length=64, db_index=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.CHECKING)
    dry_run = models.BooleanField(default=False, help_text=_("Check and preview only: no Canvas writes."))
    claimed_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=64, blank=True)
    # The preview's counts (new parents, new links, already linked, skipped, errors) and, once done,
    # the outcome counts and Canvas calls.
    preview = models.JSONField(default=dict)
    summary = models.JSONField(default=dict)
    failure = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "updated_at"])]

    def __str__(self) -> str:
        return f"import {self.filename} ({self.state})"


class ImportRow(models.Model):
    class State(models.TextChoices):
        INVALID = "invalid", _("Not valid")
        PENDING = "pending", _("Waiting")
        CLAIMED = "claimed", _("Working")
        DONE = "done", _("Done")
        SKIPPED = "skipped", _("Skipped")
        FAILED = "failed", _("Failed")

    class Outcome(models.TextChoices):
        NEW_PARENT_LINKED = "new_parent_linked", _("New parent account, linked")
        LINKED = "linked", _("Linked")
        ALREADY_LINKED = "already_linked", _("Already linked")
        HELD_PAIR = "held_pair", _("Held apart by the school")
        ERROR = "error", _("Error")

    OPEN_STATES = (State.PENDING, State.CLAIMED)

    run = models.ForeignKey(ImportRun, on_delete=models.CASCADE, related_name="rows")
    number = models.PositiveIntegerField(help_text=_("The line in the file (the header is line 1)."))
    student_key = models.CharField(max_length=255, blank=True)
    parent_email = models.CharField(max_length=320, blank=True)
    parent_first_name = models.CharField(max_length=255, blank=True)
    parent_last_name = models.CharField(max_length=255, blank=True)
    language = models.CharField(max_length=16, blank=True)
    parent_sis_id = models.CharField(max_length=255, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    # Validation's plain-words reason a row is invalid or skipped; the worker's for a failure.
    error = models.TextField(blank=True)
    outcome = models.CharField(max_length=32, choices=Outcome.choices, blank=True)
    # What the preview expects this row to do (new_parent_linked, linked, already_linked, held_pair).
    expected = models.CharField(max_length=32, blank=True)
    canvas_calls = models.PositiveSmallIntegerField(default=0)
    canvas_student_id = models.PositiveBigIntegerField(null=True, blank=True)
    canvas_observer_id = models.PositiveBigIntegerField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=64, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "number"]
        constraints = [models.UniqueConstraint(fields=["run", "number"], name="one_row_per_line")]
        indexes = [models.Index(fields=["run", "state"])]

    def __str__(self) -> str:
        return f"row {self.number} of {self.run_id} ({self.state})"
