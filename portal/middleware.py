"""A page the visitor can read when the database drops the connection or cannot be reached.

PostgreSQL restarting, failing over, or terminating backends makes the next query raise
``OperationalError`` (or ``InterfaceError`` on a connection already closed). Without this the visitor
gets the bare 500 page; with it, a 503 in the site's layout saying to try again, with ``Retry-After``.
Writes are in transactions, so an interrupted form leaves nothing half-written; the page says to check
before sending again. Only errors that mean the server is gone count (``portal.database``): another
``OperationalError`` (a value too large for an index, say) is a bug to fix, and stays a 500.

Views' errors arrive through ``process_exception``. An error in another middleware (the staff second
factor check, saving the session) never reaches this one as an exception: Django has already turned
it into a 500 by then, so the ``got_request_exception`` signal marks the request and the 500 is
swapped on its way out. Either way the connection is closed, so the next request connects afresh.
"""

from __future__ import annotations

import logging
import sys

from django.core.signals import got_request_exception
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

from portal.database import close_broken_connections, database_unavailable

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code == 500 and getattr(request, "_database_unavailable", False):
            return database_unavailable_response()
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not database_unavailable(exception):
            return None
        logger.error("database unavailable during %s %s: %s", request.method, request.path, exception)
        return database_unavailable_response()


@receiver(got_request_exception)
def _mark_database_unavailable(sender, request=None, **kwargs) -> None:
    # Sent from inside Django's except block, so the exception is the one being handled.
    if request is not None and database_unavailable(sys.exc_info()[1]):
        request._database_unavailable = True


def database_unavailable_response() -> HttpResponse:
    close_broken_connections()
    # No request in the context: the base template would read the user, and the user is in the database.
    response = HttpResponse(render_to_string("503.html"), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
