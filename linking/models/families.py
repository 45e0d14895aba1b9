"""The portal's record of families: students, parents, the codes and requests that link them, and the
links it made in Canvas.

Each row that asks for Canvas work is also its outbox: it is saved before its task is queued, a worker
claims it with a conditional update, and a periodic task re-queues rows left waiting.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .languages import LanguagePreference


class Student(models.Model):
    """A Canvas student the portal knows of: one who signed in, or one a parent linked to."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="student"
    )
    canvas_user_id = models.PositiveBigIntegerField(unique=True)
    name = models.CharField(max_length=255)
    sis_user_id = models.CharField(max_length=255, blank=True)
    # Staff flag a student whose every new link must be reviewed (the "student is flagged" rule).
    flagged = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name


class Parent(models.Model):
    """A parent's portal account, and the Canvas observer account it maps to once found or created."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="parent")
    name = models.CharField(max_length=255)
    canvas_user_id = models.PositiveBigIntegerField(null=True, blank=True, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name

    @property
    def email(self) -> str:
        return self.user.email

    @property
    def locale(self) -> str:
        """The parent's language ("en", "es"), or "" if they never chose one: the school's emails to them and
        the Canvas account the portal makes for them are in it. Saved as their user's LanguagePreference."""
        return LanguagePreference.language_of(self.user)


class PairingCode(models.Model):
    """A pairing code asked for through the portal; the worker gets it from Canvas.

    The code is a secret between the student and their parent: it is shown to the student and mailed
    where they say, and never logged or audited.
    """

    class State(models.TextChoices):
        PENDING = "pending", _("Being made")
        CLAIMED = "claimed", _("Being made")
        ACTIVE = "active", _("Ready")
        FAILED = "failed", _("Could not be made")

    class Failure(models.TextChoices):
        NOT_ENROLLED = "not_enrolled", _("Not enrolled in a course yet")
        SIGNUP_DISABLED = "signup_disabled", _("Parent sign-up is turned off")
        NOT_AUTHORIZED = "not_authorized", _("Canvas refused")
        SIGNED_OUT = "signed_out", _("Canvas sign-in expired")
        CANVAS_UNAVAILABLE = "canvas_unavailable", _("Canvas unreachable")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    student = models.ForeignKey(Student, on_delete=models.CASCADE, related_name="pairing_codes")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    failure = models.CharField(max_length=32, choices=Failure.choices, blank=True)
    code = models.CharField(max_length=16, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "updated_at"])]

    def __str__(self) -> str:
        return f"pairing code {self.id} ({self.state})"

    FAILURE_ADVICE = {
        Failure.NOT_ENROLLED: _(
            "Canvas can't make a code for you yet because you are not enrolled in any course. "
            "Once your classes show up in Canvas, come back and try again."
        ),
        Failure.SIGNUP_DISABLED: _(
            "Your school has turned off parent sign-up in Canvas, so no codes can be made. "
            "Ask the school office how your parent can get access."
        ),
        Failure.NOT_AUTHORIZED: _("Canvas refused to make a code. Please ask the school office for help."),
        Failure.SIGNED_OUT: _("Your Canvas sign-in has expired. Sign in with Canvas again, then try once more."),
        Failure.CANVAS_UNAVAILABLE: _("Canvas isn't answering right now. Please try again in a few minutes."),
    }

    @property
    def advice(self) -> str:
        return str(self.FAILURE_ADVICE.get(self.failure, "")) if self.state == self.State.FAILED else ""

    @property
    def is_pending(self) -> bool:
        return self.state in (self.State.PENDING, self.State.CLAIMED)

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_usable(self) -> bool:
        return self.state == self.State.ACTIVE and not self.is_expired

    @property
    def days_left(self) -> int:
        if self.expires_at is None:
            return 0
        return max(0, (self.expires_at - timezone.now() + timedelta(hours=23, minutes=59)).days)


class LinkRequest(models.Model):
    """One code a parent entered, from the moment it is saved until Canvas linked them or refused."""

    class State(models.TextChoices):
        WAITING = "waiting", _("Waiting")
        LINKING = "linking", _("Linking")
        LINKED = "linked", _("Linked")
        FAILED = "failed", _("Failed")
        HELD = "held", _("Waiting for the school")
        REJECTED = "rejected", _("Declined by the school")

    class Rule(models.TextChoices):
        HOLD_ALL = "hold_all", _("Every request is reviewed")
        MAX_OBSERVERS = "max_observers", _("The student already has enough linked parents")
        WATCHED_DOMAIN = "watched_domain", _("The parent's email domain is on the watch list")
        FLAGGED_STUDENT = "flagged_student", _("The student is flagged")
        PAIR_HOLD = "pair_hold", _("A hold on this parent and student")

    class Failure(models.TextChoices):
        BLOCKED = "blocked", _("The school blocked this link")
        INVALID_CODE = "invalid_code", _("The code is wrong, expired or already used")
        NO_LINK = "no_link", _("Canvas made no link")
        AMBIGUOUS_ACCOUNT = "ambiguous_account", _("More than one Canvas account has this email")
        UNCERTAIN = "uncertain", _("The outcome could not be confirmed")
        NOT_AUTHORIZED = "not_authorized", _("Canvas refused the portal")
        CANVAS_UNAVAILABLE = "canvas_unavailable", _("Canvas did not answer for too long")

    class Source(models.TextChoices):
        TYPED = "typed", _("Typed in")
        QR = "qr", _("From a QR code or link")

    OPEN_STATES = (State.WAITING, State.LINKING, State.HELD)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    parent = models.ForeignKey(Parent, on_delete=models.CASCADE, related_name="link_requests")
    code = models.CharField(max_length=16, blank=True)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.TYPED)
    state = models.CharField(max_length=16, choices=State.choices, default=State.WAITING)
    failure = models.CharField(max_length=32, choices=Failure.choices, blank=True)
    student = models.ForeignKey(Student, null=True, blank=True, on_delete=models.SET_NULL, related_name="link_requests")
    held_rule = models.CharField(max_length=32, choices=Rule.choices, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_reason = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Set, and committed, just before the call that redeems the code: after a crash or a lost answer the
    # next attempt knows the code may be spent and checks Canvas before calling the request failed.
    redeem_started_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    # The Celery task id holding the claim: a redelivered task (its worker died) may take it back.
    claimed_by = models.CharField(max_length=64, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Where the code was entered from, for the per-address limit on guessing codes (services.guessing).
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["state", "updated_at"]),
            # The guessing limits count recent requests by parent, by address and in all.
            models.Index(fields=["parent", "created_at"]),
            models.Index(fields=["client_ip", "created_at"]),
            models.Index(fields=["failure", "finished_at"]),
            # The staff queue, newest (or oldest) first, in all or by state or rule: a page of it is read
            # from the index's end however many requests there are, not sorted from all of them.
            models.Index(fields=["created_at", "id"], name="linkrequest_created_idx"),
            models.Index(fields=["state", "created_at", "id"], name="linkrequest_state_created_idx"),
            models.Index(fields=["held_rule", "created_at", "id"], name="linkrequest_rule_created_idx"),
        ]

    def __str__(self) -> str:
        return f"link request {self.id} ({self.state})"

    STATUS_TEXT = {
        State.WAITING: _("Waiting to be linked…"),
        State.LINKING: _("Linking now…"),
        State.LINKED: _("Linked"),
        State.FAILED: _("Not linked"),
        State.HELD: _("Waiting for the school"),
        State.REJECTED: _("Declined by the school"),
    }
    FAILURE_ADVICE = {
        Failure.BLOCKED: _("The school has blocked this link. Please contact the school office."),
        Failure.INVALID_CODE: _(
            "This code didn't work. It may be mistyped, expired (codes last 7 days) or already used. "
            "Ask your child to make a new code and enter it here."
        ),
        Failure.NO_LINK: _(
            "Canvas accepted the code but made no link, which happens when a student enters their own code. "
            "Ask your child for a new code and enter it here, signed in as yourself."
        ),
        Failure.AMBIGUOUS_ACCOUNT: _(
            "More than one Canvas account uses your email address, so we can't tell which one is yours. "
            "The school will review it; you don't need to do anything."
        ),
        Failure.UNCERTAIN: _("We couldn't confirm the link in Canvas. The school will review it."),
        Failure.NOT_AUTHORIZED: _("Canvas refused the portal's request. The school will review it."),
        Failure.CANVAS_UNAVAILABLE: _(
            "Canvas didn't answer for a long time. Ask your child for a new code and try again."
        ),
    }

    # Failures staff may retry once the cause is mended; the code is kept for them (it expires anyway).
    RETRYABLE_FAILURES = (
        Failure.CANVAS_UNAVAILABLE,
        Failure.NOT_AUTHORIZED,
        Failure.AMBIGUOUS_ACCOUNT,
        Failure.UNCERTAIN,
    )

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES

    @property
    def can_retry(self) -> bool:
        """A failure Canvas or an unclear account caused, with the code still in hand."""
        return self.state == self.State.FAILED and self.failure in self.RETRYABLE_FAILURES and bool(self.code)

    @property
    def status_text(self) -> str:
        return str(self.STATUS_TEXT[self.state])

    @property
    def advice(self) -> str:
        if self.state == self.State.HELD:
            return str(_("The school reviews some requests before linking. You'll get an email when it's done."))
        if self.state == self.State.REJECTED:
            return str(_("The school declined this request. Please contact the school office."))
        return str(self.FAILURE_ADVICE.get(self.failure, "")) if self.state == self.State.FAILED else ""


class ObservationLinkQuerySet(models.QuerySet):
    def current(self):
        return self.filter(state__in=ObservationLink.CURRENT_STATES)


class ObservationLink(models.Model):
    """A link between a parent and a student on one Canvas root account, as the portal knows it."""

    class State(models.TextChoices):
        ACTIVE = "active", _("Linked")
        REMOVING = "removing", _("Being removed")
        REMOVED = "removed", _("Removed")

    class Method(models.TextChoices):
        PAIRING_CODE = "pairing_code", _("Pairing code")
        ADMIN = "admin", _("Linked by the school")
        SIS_IMPORT = "sis_import", _("SIS import")
        ADOPTED = "adopted", _("Found in Canvas")

    CURRENT_STATES = (State.ACTIVE, State.REMOVING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    parent = models.ForeignKey(Parent, on_delete=models.CASCADE, related_name="observation_links")
    student = models.ForeignKey(Student, on_delete=models.CASCADE, related_name="observation_links")
    root_account_id = models.PositiveBigIntegerField()
    method = models.CharField(max_length=16, choices=Method.choices)
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE)
    link_request = models.ForeignKey(
        LinkRequest, null=True, blank=True, on_delete=models.SET_NULL, related_name="observation_links"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    removed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    removed_at = models.DateTimeField(null=True, blank=True)
    remove_reason = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ObservationLinkQuerySet.as_manager()

    class Meta:
        ordering = ["student__name"]
        indexes = [models.Index(fields=["state", "updated_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["parent", "student", "root_account_id"],
                condition=Q(state__in=["active", "removing"]),
                name="one_current_link_per_pair_and_root_account",
            )
        ]

    def __str__(self) -> str:
        return f"{self.parent} observes {self.student} ({self.state})"
