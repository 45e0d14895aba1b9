"""The admin hands what it reads from a request to the database as it is: Django's admin checks a list
filter's name, never its value, and its search has no length.

Found by fuzzing (tests/security/test_fuzz_admin.py), each was a 500: a NUL character in a filter
(``?action=%00``), which PostgreSQL refuses in text; a date drill-down out of the calendar
(``?created_at__year=9999`` asks for the year after); and on SQLite, a search longer than its LIKE
patterns may be and a number past the largest integer it holds (a filter's id, a form's list of ids).
Each is refused here, before any admin view runs, as a 400 that says why (portal.errors.bad_request).
"""

from __future__ import annotations

from functools import wraps

from django.core.exceptions import BadRequest
from django.db import connection
from django.utils.translation import gettext as _

# A date part in a filter (the drill-down's year, month and day), and the values it may take. The year
# stops one short of 9999 because the drill-down asks for everything up to the start of the next one.
DATE_PARTS = {"__year": (1, 9998), "__month": (1, 12), "__day": (1, 31)}
SEARCH = "q"
LONGEST_SEARCH = 1000  # characters; SQLite refuses LIKE patterns over 50,000 bytes
LARGEST_INTEGER = 2**63 - 1


def admin_query_check(request) -> None:
    """Raise BadRequest for a request whose values the admin would pass to the database and fail on."""
    for key, values in request.GET.lists():
        if "\x00" in key or any("\x00" in value for value in values):
            raise BadRequest(_("The address holds a NUL character, which no filter can match."))
        for suffix, (low, high) in DATE_PARTS.items():
            if key.endswith(suffix) and not all(_number_between(value, low, high) for value in values):
                raise BadRequest(_("A date in the address is not a date the calendar has."))
        if key == SEARCH and any(len(value) > LONGEST_SEARCH for value in values):
            raise BadRequest(_("Search for at most %(count)d characters.") % {"count": LONGEST_SEARCH})
    if connection.vendor == "sqlite":
        for key, values in [*request.GET.lists(), *request.POST.lists()]:
            if key != SEARCH and any(
                value.isascii() and value.isdigit() and int(value) > LARGEST_INTEGER for value in values
            ):
                raise BadRequest(_("A number in what you sent is larger than any id."))


def _number_between(value: str, low: int, high: int) -> bool:
    return value.isascii() and value.isdigit() and low <= int(value) <= high


def guard_admin_queries(site) -> None:
    """Check every request to ``site``'s views (each is wrapped by ``site.admin_view``)."""
    admin_view = site.admin_view

    def checked_admin_view(view, cacheable=False):
        @wraps(view)
        def checked(request, *args, **kwargs):
            admin_query_check(request)
            return view(request, *args, **kwargs)

        return admin_view(checked, cacheable)

    site.admin_view = checked_admin_view
