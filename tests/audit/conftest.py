"""Fixtures for the audit tests: events recorded through the real service."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction

from linking.audit.services import audit_event_record


@pytest.fixture
def staff_user(db):
    return get_user_model().objects.create_user(username="staff", email="staff@example.test", is_staff=True)


@pytest.fixture
def record_events(db):
    """Record ``count`` events, each in its own (savepoint) transaction; returns them oldest first."""

    def record(count: int, **overrides) -> list:
        events = []
        for number in range(count):
            with transaction.atomic():
                fields = {
                    "action": "link.created",
                    "actor_label": "staff",
                    "subject": {"link_request": f"request-{number}", "parent": number, "student": 100 + number},
                    "canvas_calls": [{"method": "PUT", "path": f"/api/v1/users/{number}/observees/9", "status": 200}],
                    "data": {"attempt": 1},
                    "personal": {"parent_name": f"Parent {number}", "email": f"parent{number}@example.test"},
                    **overrides,
                }
                events.append(audit_event_record(**fields))
        return events

    return record
