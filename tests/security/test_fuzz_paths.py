"""Every id in a URL's path, wrong: ids of nothing, of other kinds of rows, of other people's rows, junk.

For each URL whose path names an object (``<uuid:pk>``, ``<int:pk>``), as the persona who may use it:
a random UUID, the nil UUID, the real id in capitals or without dashes, ids of rows in every other
table, ids too large for any column, numbers where a UUID goes and the reverse, percent-escaped NUL and
bytes that are not UTF-8, someone else's object (another student's code, another parent's link, a user
who is not staff), then what hypothesis draws. Every answer is a 4xx with a message (a 404: nothing
says whether the object exists), never a 500, and nothing is written.
"""

from __future__ import annotations

import functools
import re
import uuid
from urllib.parse import quote

import pytest
from django.apps import apps
from django.db import models
from django.urls import Resolver404, resolve, reverse
from hypothesis import assume, given
from hypothesis import strategies as st

from tests.security.fuzz_targets import TARGETS, World
from tests.security.fuzzing import (  # noqa: F401
    Submission,
    each,
    fuzz_report,
    fuzz_request,
    fuzz_settings,
    random_uuid,
    walked_urls,
)
from tests.staff.conftest import anonymous, fast_accounts, parent_a, parent_b, staff, staff_admin, student  # noqa: F401

ROUTES = {key: route for route, key in walked_urls()}
CONVERTER = re.compile(r"<(?:(\w+):)?(\w+)>")
CASES = [
    (key, target)
    for key, targets in TARGETS.items()
    for target in targets
    if key in ROUTES and CONVERTER.search(ROUTES[key])
]
PERSONAS = sorted({target.persona for _, target in CASES})
NOTHING = Submission({}, "multipart")


def test_every_url_with_an_id_in_its_path_is_fuzzed_here():
    with_ids = {key for key, route in ROUTES.items() if CONVERTER.search(route) and not route.startswith("admin/")}
    fuzzed = {key for key, target in CASES if target.kwargs and target.model}
    assert with_ids <= fuzzed, f"give these a Target with kwargs and model in fuzz_targets.py: {with_ids - fuzzed}"


def _ids_of_other_tables(model, kind: str) -> list[str]:
    """Up to two ids from every other table whose primary key is of the same kind."""
    found = []
    for other in apps.get_models():
        pk = other._meta.pk
        if other is model or other._meta.proxy or not other._meta.managed:
            continue
        if (kind == "uuid") != isinstance(pk, models.UUIDField):
            continue
        if kind == "int" and not isinstance(pk, models.AutoField | models.BigAutoField | models.IntegerField):
            continue
        ids = other.objects.values_list("pk", flat=True)[:1]
        known = set(model.objects.values_list("pk", flat=True)) if kind == "int" else set()
        found += [str(pk) for pk in ids if pk not in known]
    return found


def wrong_segments(kind: str, real: str, model) -> list[str]:
    # Junk the converter refuses never reaches the view (the resolver answers 404): a few are enough.
    junk = ["nul%00inside", "%FF%FE%C0%AF", "%E2%80%AE%F0%9F%91%8D" + quote("é" * 300)]
    if kind == "uuid":
        top = [str(random_uuid(1)), "00000000-0000-0000-0000-000000000000", real.upper(), real.replace("-", "")]
        top += ["18446744073709551616"]
    else:
        last = max((int(pk) for pk in model.objects.values_list("pk", flat=True)), default=0)
        top = ["0", str(last + 10_000), "2147483648", "9223372036854775808", "9" * 40, "-1"]
        top += [str(random_uuid(1)), "%D9%A3%C2%B2"]  # a UUID where a number goes; "٣²"
    return top + _ids_of_other_tables(model, kind) + junk


def url_with(route: str, segment: str) -> str:
    return "/" + CONVERTER.sub(segment, route, count=1)


def fuzz_path(world: World, key: str, target) -> None:
    client = world.client(target.persona)
    route = ROUTES[key]
    kind = CONVERTER.search(route).group(1) or "str"
    real = str(next(iter(target.kwargs(world).values())))

    def check(url: str, kind_of_request: str) -> None:
        try:
            if resolve(url.split("?")[0]).url_name not in (key, None):
                return  # a wrong id that spells another page's address (".../approve/") is that page
        except Resolver404:
            pass
        outcome = fuzz_request(client, target.method, url, NOTHING, refusal=target.refusal, kind=kind_of_request)
        # 301: APPEND_SLASH's redirect, for a segment that held a slash.
        assert outcome.status in (301, 404), f"{target.method} {url} answered {outcome.status}; a wrong id is a 404"

    for segment in wrong_segments(kind, real, target.model):
        check(url_with(route, segment), "path")
    for others in target.others(world) if target.others else []:
        check(reverse(key, kwargs=others), "path")

    # Mostly ids the converter accepts, so that the view itself is reached.
    @fuzz_settings
    @given(st.one_of(st.uuids().map(str), st.integers(min_value=0).map(str), st.text(min_size=1, max_size=60)))
    def explore(segment):
        assume(segment not in (".", ".."))
        check(url_with(route, quote(segment, safe="")), "path-hypothesis")

    explore()


@pytest.mark.parametrize("persona", PERSONAS)
def test_no_wrong_id_in_the_path_makes_a_page_fail(request, persona):
    world = World(request)
    each(
        {
            f"{target.method} {key}": functools.partial(fuzz_path, world, key, target)
            for key, target in CASES
            if target.persona == persona
        }
    )


def test_the_wrong_ids_include_rows_of_other_tables(request, staff):
    world = World(request)
    target = TARGETS["staff_request_detail"][0]
    real = str(target.kwargs(world)["pk"])
    hold = TARGETS["staff_hold_lift"][0].kwargs(world)["pk"]
    assert str(hold) in wrong_segments("uuid", real, target.model)
    assert real not in wrong_segments("uuid", real, target.model)
    assert str(uuid.UUID(real)).upper() in wrong_segments("uuid", real, target.model)
