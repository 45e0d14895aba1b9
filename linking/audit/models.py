"""The audit log's one table.

Rows are only ever inserted, by :func:`linking.audit.services.audit_event_record`. The ORM refuses
updates and deletes here, and database triggers (migrations 0002 and 0003) refuse them for any other
client. The one exception is anonymisation, :meth:`AuditEventQuerySet.anonymise`: it blanks
``personal`` to ``{}`` and changes nothing else, the only UPDATE the triggers let through.
"""

from __future__ import annotations

from django.db import models
from django.db.models.fields.json import KeyTransform


class AppendOnlyError(Exception):
    """Audit events are never changed or deleted."""


def _refuse(*args, **kwargs):
    raise AppendOnlyError("audit events are append-only; record a new event instead")


class AuditEventQuerySet(models.QuerySet):
    # bulk_create is refused too: rows made without the service would not be chained.
    update = _update = delete = _raw_delete = bulk_update = bulk_create = _refuse

    def anonymise(self) -> int:
        """Blank ``personal`` to ``{}`` on these events, keeping ``personal_digest``; returns how many changed.

        The only write allowed on existing events, for the retention job
        (:func:`linking.audit.services.audit_personal_data_anonymise`); the chain stays verifiable
        because ``personal`` enters the hashes only through its digest.
        """
        return models.QuerySet.update(self.exclude(personal={}), personal={})


class AuditEvent(models.Model):
    """One recorded action, chained to the event before it by ``prev_hash``.

    ``hash`` is sha256 over every column except ``id`` and ``personal``; ``personal`` (names, emails,
    free text) enters only through ``personal_digest``, so it can later be blanked without breaking
    the chain (see :func:`linking.audit.services.audit_chain_verify`).
    """

    class ActorLabel(models.TextChoices):
        PARENT = "parent"
        STUDENT = "student"
        STAFF = "staff"
        WORKER = "worker"
        SYSTEM = "system"

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField()
    # A plain id, not a foreign key: deleting a user must not touch (SET_NULL is an UPDATE) their events.
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_label = models.CharField(max_length=16, choices=ActorLabel.choices)
    action = models.CharField(max_length=64)
    subject = models.JSONField(default=dict)
    canvas_calls = models.JSONField(default=list)
    outcome = models.CharField(max_length=32, default="ok")
    data = models.JSONField(default=dict)
    personal = models.JSONField(default=dict)
    personal_digest = models.CharField(max_length=64)
    # Unique: two events can never claim the same predecessor, so a missed lock fails instead of forking.
    prev_hash = models.CharField(max_length=64, unique=True)
    hash = models.CharField(max_length=64, unique=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["action", "created_at"], name="audit_action_created_idx"),
            models.Index(fields=["created_at"], name="audit_created_idx"),
            # A request's timeline (its detail page) and the log's "subject id" filter look events up by
            # these keys of ``subject``; each index holds that key's value as the lookup compares it.
            models.Index(KeyTransform("link_request", "subject"), name="audit_subject_request_idx"),
            models.Index(KeyTransform("observation_link", "subject"), name="audit_subject_link_idx"),
            models.Index(KeyTransform("parent", "subject"), name="audit_subject_parent_idx"),
            models.Index(KeyTransform("student", "subject"), name="audit_subject_student_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} {self.outcome}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("audit events are append-only; record a new event instead")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("audit events are append-only; they are never deleted")
