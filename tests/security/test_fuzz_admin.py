"""Django's admin, fuzzed as a superuser signed in with the second factor (``site_admin``).

Every admin URL is found by walking the URL conf and sorted by what it takes: a list (search, ordering,
page, and every filter its own links offer), a form (add, password change), an object's page (wrong
ids), or a page (index, an app, sign-in and out, the autocomplete, anything else under /admin/). The
checks are the other fuzz tests' (tests/security/fuzzing.py): never a 500; a refused form shows its
errors and writes nothing. The admin answers a wrong id by going back to its index with a message, and
a list filter it cannot use with ``?e=1``; both are fine here.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from urllib.parse import quote

import pytest
from django.apps import apps
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.urls import get_resolver, reverse
from hypothesis import given

from tests.security.fuzzing import (  # noqa: F401
    Submission,
    each,
    fuzz_report,
    fuzz_request,
    fuzz_settings,
    page_fields,
    page_query_keys,
    random_uuid,
    submissions,
    sweep,
    walk,
)
from tests.staff.conftest import fast_accounts  # noqa: F401

ADMIN_PREFIX = "admin/"
LIST_PARAMETERS = ("q", "o", "p", "all", "_facets", "_popup", "_changelist_filters")
# Read before anything else, and refused at once when wrong: sent alone, or they would hide the rest.
ALONE_PARAMETERS = ("_to_field", "e")
# A filter reaches the database only when every other parameter is right: each is sent alone with these.
FILTER_VALUES = ("nul\x00inside", "9" * 40, "9999")
ACTION_FIELDS = ("action", "_selected_action", "index", "select_across")
CONVERTER = re.compile(r"<(?:\w+:)?\w+>|\(\?P<\w+>[^)]*\)")
# The admin looks every object up the same way (ModelAdmin.get_object), so a few kinds are enough.
WRONG_IDS = ("9" * 40, "00000000-0000-0000-0000-000000000000", "nul%00inside", "%D9%A3%C2%B2%E2%80%AE")


@dataclass(frozen=True)
class AdminTarget:
    kind: str  # "list", "form", "object" (an id in the path) or "page"
    name: str | None
    model: type | None


def admin_targets() -> dict[str, AdminTarget]:
    """Every admin route, and what it takes."""
    found = {}
    for route, pattern in walk(get_resolver().url_patterns):
        if not route.startswith(ADMIN_PREFIX):
            continue
        model_admin = getattr(pattern.callback, "model_admin", None)
        name = pattern.name or ""
        if name.endswith("_changelist"):
            kind = "list"
        elif name.endswith("_add") or name == "password_change":
            kind = "form"
        elif "<" in route and "(?P" not in route:
            kind = "object"
        else:
            kind = "page"
        found[route] = AdminTarget(kind, pattern.name, model_admin.model if model_admin else _model_of(route))
    return found


def _model_of(route: str):
    """The model an admin route is under (admin/<app>/<model>/...), for views the admin does not tag."""
    parts = route.split("/")
    try:
        return apps.get_model(parts[1], parts[2]) if len(parts) > 3 else None
    except (LookupError, ValueError):
        return None


def filter_parameters(model) -> tuple[str, ...]:
    """The query parameters the model's admin list reads for its filters and its date drill-down.

    Taken from the ModelAdmin, not the page: a filter offers links only for values that exist, and an
    empty list has none, but its parameters are read all the same.
    """
    model_admin = admin.site._registry[model]
    names = []
    for entry in model_admin.list_filter:
        field = entry[0] if isinstance(entry, tuple | list) else entry
        if isinstance(field, str):
            names += [field, f"{field}__exact", f"{field}__gte"]
        else:
            names.append(getattr(field, "parameter_name", "") or "")
    if model_admin.date_hierarchy:
        names += [f"{model_admin.date_hierarchy}__{part}" for part in ("year", "month", "day")]
    return tuple(name for name in names if name)


TARGETS = admin_targets()


def routes(kind: str) -> list[str]:
    return [route for route, target in TARGETS.items() if target.kind == kind]


def fuzz(client, method: str, url: str, fields: tuple[str, ...], kind: str, **check) -> None:
    for submission in sweep(fields, method):
        fuzz_request(client, method, url, submission, refusal="rerender", kind=kind, **check)

    @fuzz_settings
    @given(submissions(fields, method))
    def explore(submission):
        fuzz_request(client, method, url, submission, refusal="rerender", kind=f"{kind}-hypothesis", **check)

    explore()


# One test a kind of admin page (signing the superuser in costs more than fuzzing a page); each names
# every page that failed.
# A date filter's value is parsed by the admin itself: a date with no time is a warning there (tests turn
# warnings from model fields into errors), not a failure.
@pytest.mark.filterwarnings("ignore:DateTimeField .* received a naive datetime:RuntimeWarning")
def test_no_search_filter_ordering_or_page_makes_an_admin_list_fail(site_admin):
    each({route: functools.partial(fuzz_list, site_admin.client, route) for route in routes("list")})


def fuzz_list(client, route: str) -> None:
    url = reverse(f"admin:{TARGETS[route].name}")
    filters = tuple(dict.fromkeys(filter_parameters(TARGETS[route].model) + page_query_keys(client, url)))
    fuzz(client, "GET", url, LIST_PARAMETERS + filters, "admin")
    for name in ALONE_PARAMETERS + filters:
        for value in FILTER_VALUES:
            fuzz_request(client, "GET", url, Submission({name: value}, "query"), kind="admin")
    # The list's actions ("delete selected" and the like) post to the list itself.
    fuzz(client, "POST", url, ACTION_FIELDS, "admin")


def test_no_field_makes_an_admin_form_fail(site_admin):
    forms = {route: reverse(f"admin:{TARGETS[route].name}") for route in routes("form")}
    # The superuser's own password, as the user admin changes it.
    forms["auth/user/<id>/password/"] = reverse("admin:auth_user_password_change", args=[site_admin.user.pk])
    each({route: functools.partial(fuzz_form, site_admin.client, url) for route, url in forms.items()})


def fuzz_form(client, url: str) -> None:
    fuzz(client, "POST", url, page_fields(client, url) or ("name",), "admin")


def _ids_naming_nothing_in(model) -> list[str]:
    """An id of another table of each kind (a number, a UUID, a string) that names no row of ``model``."""
    ids = {}
    for other in apps.get_models():
        if other._meta.managed and not other._meta.proxy:
            for pk in other.objects.values_list("pk", flat=True)[:1]:
                if model is None or not _names_a_row(model, str(pk)):
                    ids.setdefault(type(pk), str(pk))
    return list(ids.values())


def _names_a_row(model, pk: str) -> bool:
    try:
        return model.objects.filter(pk=pk).exists()
    except (ValueError, ValidationError):
        return False


def test_no_wrong_id_makes_an_admin_object_page_fail(site_admin):
    each({route: functools.partial(fuzz_object, site_admin.client, route) for route in routes("object")})


def fuzz_object(client, route: str) -> None:
    target = TARGETS[route]
    method = "POST" if route.endswith(("/delete/", "/password/")) else "GET"
    for segment in (*WRONG_IDS, str(random_uuid(3)), *(quote(pk) for pk in _ids_naming_nothing_in(target.model))):
        url = "/" + CONVERTER.sub(segment, route)
        outcome = fuzz_request(client, method, url, Submission({}, "multipart"), refusal="rerender", kind="admin")
        # 403: an admin that lets nobody delete (the audit log's) refuses before it looks the id up.
        assert outcome.status in (302, 403, 404), f"{method} {url}: {outcome.status}"


def _page_url(target: AdminTarget) -> str:
    if target.name == "app_list":
        return reverse("admin:app_list", kwargs={"app_label": "auth"})
    if target.name is None:
        return f"/{ADMIN_PREFIX}no-such-page/"  # the admin's catch-all: any other address under /admin/
    return reverse(f"admin:{target.name}")


PAGE_FIELDS = {
    "login": ("next", "username", "password"),
    "logout": ("next",),
    "autocomplete": ("term", "app_label", "model_name", "field_name", "page"),
    "jsi18n": ("language",),
}


def test_no_query_makes_an_admin_page_fail(site_admin):
    each({route: functools.partial(fuzz_page, site_admin.client, route) for route in routes("page")})


def fuzz_page(client, route: str) -> None:
    target = TARGETS[route]
    method = "POST" if target.name == "logout" else "GET"
    # Signing out ends the session before Django's admin reads the rest of the form (its ``next``): a
    # body it then refuses has still signed the visitor out, which is no data left behind.
    check = {"ignore_tables": frozenset({"django_session"})} if target.name == "logout" else {}
    fuzz(client, method, _page_url(target), PAGE_FIELDS.get(target.name, ()), "admin", **check)
    if "(?P" in route:  # an app's page, or the catch-all: any segment under /admin/
        for segment in ("nul%00inside", "%FF%FE", "x" * 5000, "auth%2F..%2Fsites", "%E2%80%AE", "auth/x"):
            fuzz_request(client, "GET", f"/{ADMIN_PREFIX}{segment}/", Submission({}, "query"), kind="admin")
