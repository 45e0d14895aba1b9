"""A fixture the whole suite needs once the audit log exists (import it into ``tests/conftest.py``).

A transactional test (``transactional_db``, ``django_db(transaction=True)``, ``live_server``) ends with
Django's flush of every table, and the append-only triggers refuse that for a log with events in it.
This override of pytest-django's database fixture (every database-using test goes through it) empties
the log first, triggers suspended, when the test committed any events.
"""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from .tampering import audit_events_purge


@pytest.fixture
def _django_db_helper(_django_db_helper):
    yield
    from linking.audit.models import AuditEvent

    # Outside a transaction here means a transactional test, whose events were committed.
    if not connection.in_atomic_block and AuditEvent.objects.exists():
        with transaction.atomic():
            audit_events_purge()
