"""Changing audit rows behind the triggers' back, as an intruder with database access could.

Use inside a transaction (the ``db`` fixture's is enough): on PostgreSQL the triggers are disabled
and enabled again, on SQLite dropped and created again from their stored SQL, so a failing test
leaves them in place either way once its transaction rolls back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

TABLE = "audit_auditevent"


@contextmanager
def audit_triggers_suspended() -> Iterator[None]:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER USER")
            try:
                yield
            finally:
                cursor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER USER")
            return
        cursor.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s", [TABLE])
        triggers = cursor.fetchall()
        assert triggers, "the append-only triggers are missing"
        for name, _ in triggers:
            cursor.execute(f'DROP TRIGGER "{name}"')
        try:
            yield
        finally:
            for _, sql in triggers:
                cursor.execute(sql)


def tamper(sql: str, params: list | None = None) -> None:
    """Run ``sql`` with the append-only triggers out of the way."""
    with audit_triggers_suspended(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def audit_events_purge() -> None:
    """Empty the table, for transactional tests (the test runner's flush would be refused)."""
    tamper(f"DELETE FROM {TABLE}")  # noqa: S608 - a constant
