"""Reading the audit log: the filtered list staff browse and export, and what a page shows beside it."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone

from .models import AuditEvent
from .services import VERIFIED

# The subject keys a staff member can search by, and what kind of id each holds.
SUBJECT_UUID_KEYS = ("link_request",)
SUBJECT_INT_KEYS = ("parent", "student")


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


def subject_match(value: str, *, key: str = "") -> Q:
    """Exact match of ``value`` on one subject key, or on every key that holds that kind of id.

    Raises ValueError when ``value`` cannot be an id of that key (a UUID for a link request, a whole
    number for a parent or a student).
    """
    value = value.strip()
    keys = (key,) if key else SUBJECT_UUID_KEYS + SUBJECT_INT_KEYS
    try:
        as_uuid = str(uuid.UUID(value))
    except ValueError:
        as_uuid = None
    as_int = int(value) if value.isascii() and value.isdigit() else None
    match = Q()
    for name in keys:
        if name in SUBJECT_UUID_KEYS and as_uuid is not None:
            match |= Q(**{f"subject__{name}": as_uuid})
        elif name in SUBJECT_INT_KEYS and as_int is not None:
            match |= Q(**{f"subject__{name}": as_int})
    if not match:
        kinds = "a link request id (UUID)" if key in SUBJECT_UUID_KEYS else "a number"
        raise ValueError(f"Enter {kinds}." if key else "Enter a link request id (UUID) or a parent or student id.")
    return match


def audit_event_list(
    *,
    action: str = "",
    actor_label: str = "",
    outcome: str = "",
    date_from: date | None = None,
    date_to: date | None = None,
    subject: str = "",
    subject_key: str = "",
) -> QuerySet[AuditEvent]:
    """Events matching every filter given, newest first.

    ``action`` ending in a dot is a prefix (``link.`` matches ``link.created`` and ``link.removed``);
    the date range is whole days in the portal's time zone, both ends included; ``subject`` is an
    exact id (see :func:`subject_match`).
    """
    events = AuditEvent.objects.all()
    if action.endswith("."):
        events = events.filter(action__startswith=action)
    elif action:
        events = events.filter(action=action)
    if actor_label:
        events = events.filter(actor_label=actor_label)
    if outcome:
        events = events.filter(outcome=outcome)
    if date_from:
        events = events.filter(created_at__gte=_start_of(date_from))
    if date_to:
        events = events.filter(created_at__lt=_start_of(date_to + timedelta(days=1)))
    if subject:
        events = events.filter(subject_match(subject, key=subject_key))
    return events.order_by("-id")


def audit_actions() -> list[str]:
    """Every action recorded so far, sorted, in one query that reads the action index once per action.

    ``SELECT DISTINCT action`` reads every event (a log of millions, in time); this walks the index on
    (action, created_at) from each action straight to the next, so its cost follows the few dozen
    actions there are, not the events.
    """
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH RECURSIVE actions(action) AS (
                SELECT MIN(action) FROM {table}
                UNION ALL
                SELECT (SELECT MIN(action) FROM {table} WHERE action > actions.action)
                FROM actions WHERE actions.action IS NOT NULL
            )
            SELECT action FROM actions WHERE action IS NOT NULL
            """  # noqa: S608 - the table name is the model's own
        )
        return [row[0] for row in cursor.fetchall()]


def audit_actor_emails(actor_ids: Iterable[int | None]) -> dict[int, str]:
    """The email of each actor that still exists, in one query."""
    ids = {actor_id for actor_id in actor_ids if actor_id is not None}
    if not ids:
        return {}
    return dict(get_user_model().objects.filter(pk__in=ids).values_list("pk", "email"))


def audit_last_check() -> AuditEvent | None:
    """The newest ``audit.verified`` event (the chain's last check), or None when it was never checked."""
    return AuditEvent.objects.filter(action=VERIFIED).order_by("-id").first()
