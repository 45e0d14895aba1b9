"""CSRF on every state change, generated from the URL conf like the permission matrix.

Every URL is posted to as a persona its rule lets through (a superuser for the admin), by a client
that enforces CSRF as a browser's would: without a token the answer is Django's CSRF refusal and
nothing in the database changes; with the token (cookie and form field) the request is not refused.
The second half holds up the other side of that bargain: a GET to any URL changes nothing, so a link
or an image on another site cannot act for a signed-in visitor either.
"""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib.sessions.models import Session
from django.middleware.csrf import get_token
from django.test import Client, RequestFactory

from tests.security.test_permission_matrix import NOBODY, RULES, WALKED, World

# /healthz answers 503 while the broker is down: the session's worker brings one that answers (memory:// on
# a laptop, Redis in CI). A fixture of the module, so that it starts before a test's transaction does.
pytestmark = pytest.mark.usefixtures("celery_worker", "fast_passwords", "canvas_sign_in")

CSRF_REFUSAL = b"CSRF verification failed"
# Rules that let no persona through: posted to by one who reaches the view all the same.
STAND_IN = {"canvas_callback": "anonymous", "socialaccount_login_error": "anonymous", "admin:login": "site_admin"}
# Answers to a persona with the token that are not CSRF refusals: the audit log is read-only even to a
# superuser (linking/audit/admin.py), and the admin's autocomplete answers its widget's query only.
FORBIDDEN_ANYWAY = {
    "admin:audit_auditevent_add",
    "admin:audit_auditevent_change",
    "admin:audit_auditevent_delete",
    "admin:autocomplete",
}
# GETs that write on purpose, and what: a download of the audit log or an import's report is itself
# audited (who took which rows), and the link policy's row is made with its defaults when first read.
GETS_THAT_WRITE = {
    "staff_audit_export": {"audit.AuditEvent": 1},
    "staff_import_report": {"audit.AuditEvent": 1},
    "staff_home": {"linking.LinkPolicy": 1},
}


def persona_for(route: str, key: str) -> str:
    if route.startswith("admin/"):
        return "site_admin"
    rule = RULES[key]
    if key in STAND_IN:
        return STAND_IN[key]
    if rule.allow == NOBODY:
        return "staff_admin"  # refused or sent elsewhere by the view itself, after the CSRF check
    return sorted(rule.allow)[0]


def row_counts() -> dict[str, int]:
    """Rows in every table but the sessions (signing in or out writes one, and that is not the site acting)."""
    return {
        model._meta.label: model._default_manager.count()
        for model in apps.get_models()
        if model is not Session and model._meta.managed
    }


def browser_like(persona) -> Client:
    """A client that enforces CSRF checks, holding ``persona``'s session cookie."""
    client = Client(enforce_csrf_checks=True)
    client.cookies.update(persona.client.cookies)
    return client


def fresh_token(client: Client) -> str:
    """A CSRF token, and its secret as the cookie a page would have set in the browser."""
    request = RequestFactory().get("/")
    token = get_token(request)
    client.cookies["csrftoken"] = request.META["CSRF_COOKIE"]
    return token


@pytest.mark.parametrize(("route", "key"), WALKED, ids=[key for _, key in WALKED])
def test_a_post_without_the_token_is_refused_and_with_it_is_let_through(request, route, key):
    rule = RULES[key]
    world = World(request)
    persona = getattr(world, persona_for(route, key))
    url = rule.build_url(world, key)
    client = browser_like(persona)
    before = row_counts()

    refused = client.post(url, rule.data(world) if rule.data else {})

    assert refused.status_code == 403 and CSRF_REFUSAL in refused.content, (
        f"POST {url} without a CSRF token: {refused.status_code}"
    )
    assert row_counts() == before, f"POST {url} without a CSRF token changed the database"

    token = fresh_token(client)
    accepted = client.post(url, {**(rule.data(world) if rule.data else {}), "csrfmiddlewaretoken": token})

    assert CSRF_REFUSAL not in accepted.content, f"POST {url} with the token was refused as CSRF"
    if key not in FORBIDDEN_ANYWAY:
        assert accepted.status_code != 403, f"POST {url} with the token: 403"
    if rule.method == "POST":
        assert accepted.status_code != 405, f"{url} is a POST in the permission matrix but does not take one"


def test_the_token_is_checked_not_merely_present(staff_admin):
    client = browser_like(staff_admin)
    fresh_token(client)
    response = client.post("/staff/policy/", {"mode": "hold_all", "csrfmiddlewaretoken": "x" * 64})
    assert response.status_code == 403 and CSRF_REFUSAL in response.content


def test_a_token_from_another_session_cookie_is_refused(staff_admin):
    attacker = Client(enforce_csrf_checks=True)
    token = fresh_token(attacker)  # the attacker's own cookie and token, pair-matched
    victim = browser_like(staff_admin)
    fresh_token(victim)
    response = victim.post("/staff/policy/", {"mode": "hold_all", "csrfmiddlewaretoken": token})
    assert response.status_code == 403 and CSRF_REFUSAL in response.content


GETS = [(route, key) for route, key in WALKED if RULES[key].method == "GET"]


@pytest.mark.parametrize(("route", "key"), GETS, ids=[key for _, key in GETS])
def test_a_get_changes_nothing(request, route, key):
    rule = RULES[key]
    world = World(request)
    persona = getattr(world, persona_for(route, key))
    url = rule.build_url(world, key)
    before = row_counts()

    persona.client.get(url)

    after = row_counts()
    changed = {label: after[label] - before[label] for label in after if after[label] != before[label]}
    assert changed == GETS_THAT_WRITE.get(key, {}), f"GET {url} changed the database"
