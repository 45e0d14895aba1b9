"""Every form field and query parameter of every URL, fuzzed as the persona who uses it.

For each entry of ``fuzz_targets.TARGETS`` (one per URL and method; one test a persona, which names
every URL that failed): the sweep gives every field every class of hostile value, then hypothesis draws
more. ``fuzzing.fuzz_request`` checks each answer: never a 500, a refusal is a 4xx (or allauth's form
again) with a visible message, and a refused submission leaves every table as it was. See
tests/security/fuzzing.py.
"""

from __future__ import annotations

import functools

import pytest
from django.urls import reverse
from hypothesis import given

from tests.canvas_oauth.conftest import configured
from tests.security.fuzz_targets import SIGNED_OUT, TARGETS, Target, World
from tests.security.fuzzing import (  # noqa: F401
    each,
    fuzz_report,
    fuzz_request,
    fuzz_settings,
    page_fields,
    submissions,
    sweep,
    walked_urls,
)
from tests.staff.conftest import anonymous, fast_accounts, parent_a, parent_b, staff, staff_admin, student  # noqa: F401

# /healthz answers 503 while the broker is down: the session's worker brings one that answers (memory:// on
# a laptop, Redis in CI). A fixture of the module, so that it starts before a test's transaction does.
pytestmark = pytest.mark.usefixtures("celery_worker")

ROUTES = {key: route for route, key in walked_urls()}
# One test a persona: signing in (staff with their authenticator app) costs more than fuzzing a URL.
BY_PERSONA: dict[str, list[tuple[str, Target]]] = {}
for key, targets in TARGETS.items():
    for target in targets:
        if key in ROUTES:  # an entry for a URL that does not exist (yet) is not walked
            BY_PERSONA.setdefault(target.persona, []).append((key, target))


@pytest.fixture(autouse=True)
def canvas_sign_in_configured(settings):
    # With a Canvas app configured, "Sign in with Canvas" runs allauth's real code; its address is
    # never contacted, since the fuzz never gets a valid OAuth state.
    settings.SOCIALACCOUNT_PROVIDERS = configured()
    settings.CANVAS_BASE_URL = "http://127.0.0.1:9"


def target_url(key: str, target, world: World) -> str:
    if key.endswith("/"):
        return "/" + key  # an unnamed URL, keyed by its route
    return reverse(key, kwargs=target.kwargs(world) if target.kwargs else None)


def fuzz_target(world: World, key: str, target: Target) -> None:
    client = world.client(target.persona)
    url = target_url(key, target, world)
    fields = tuple(dict.fromkeys(target.fields + page_fields(client, url)))
    check = {"refusal": target.refusal, "signed_in": target.persona not in SIGNED_OUT}

    for submission in sweep(fields, target.method):
        fuzz_request(client, target.method, url, submission, kind="sweep", **check)

    @fuzz_settings
    @given(submissions(fields, target.method))
    def explore(submission):
        fuzz_request(client, target.method, url, submission, kind="hypothesis", **check)

    explore()


@pytest.mark.parametrize("persona", sorted(BY_PERSONA))
def test_no_field_or_query_parameter_makes_a_page_fail(request, persona):
    world = World(request)
    each(
        {
            f"{target.method} {key}": functools.partial(fuzz_target, world, key, target)
            for key, target in BY_PERSONA[persona]
        }
    )
