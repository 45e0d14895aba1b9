"""Telling a lost database connection from other database errors, and recovering from one.

Used by the web (``portal.middleware``: a 503 page) and the worker (``linking.tasks``: a retry).
"""

from __future__ import annotations

from django.db import InterfaceError, OperationalError, connections

# PostgreSQL's SQLSTATEs for a server that is gone or not taking connections: connection exceptions,
# administrator and crash shutdown, starting up, too many connections.
CONNECTION_LOST = ("08", "57P01", "57P02", "57P03", "53300")


def database_unavailable(exception: BaseException | None) -> bool:
    """Whether the error means the database cannot be reached (a connection lost or never made).

    Another ``OperationalError`` (a value too large for an index, say) is a bug, not an outage.
    """
    if isinstance(exception, InterfaceError):
        return True
    if not isinstance(exception, OperationalError):
        return False
    # psycopg's error: no SQLSTATE when the client lost or could not open the connection.
    state = getattr(exception.__cause__, "sqlstate", "unknown")
    return state is None or state.startswith(CONNECTION_LOST)


def close_broken_connections() -> None:
    """Close this thread's connections the server dropped, so that the next query connects afresh.

    Django does this only between requests and tasks; within one, a dropped connection stays dead.
    """
    for connection in connections.all(initialized_only=True):
        if connection.connection is not None and not connection.is_usable():
            connection.close()
