"""Building clients: from arguments without Django, and from the portal's settings."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from linking.canvas import CanvasClient, admin_client, canvas_client, user_ref
from linking.canvas.transport import get_session


@pytest.mark.parametrize(
    "options",
    [
        {"timeout": None},
        {"timeout": (5, 0)},
        {"timeout": (5,)},
        {"base_url": "https://school.instructure.com/api/v1"},
        {"base_url": "school.instructure.com"},
        {"token": "two words"},
    ],
)
def test_it_refuses_nonsense_arguments(options):
    arguments = {"base_url": "https://school.instructure.com", "token": "t0ken", **options}

    with pytest.raises(ValueError):
        CanvasClient(**arguments)


def test_it_builds_without_django_settings_and_keeps_the_token_out_of_its_repr():
    client = CanvasClient(base_url="https://school.instructure.com/", token="t0ken-secret", timeout=(3, 9))

    assert client.base_url == "https://school.instructure.com"
    assert client.timeout == (3.0, 9.0)
    assert "t0ken-secret" not in repr(client) + repr(vars(client))


def test_every_client_shares_one_session():
    assert get_session() is get_session()


def test_the_admin_client_reads_the_portal_settings(settings):
    settings.CANVAS_BASE_URL = "https://school.instructure.com"
    settings.CANVAS_ADMIN_TOKEN = "admin-t0ken"
    settings.CANVAS_ACCOUNT_ID = "7"
    settings.CANVAS_TIMEOUT_CONNECT = 3.05
    settings.CANVAS_TIMEOUT_READ = 20

    client = admin_client()

    assert (client.base_url, client.account_id, client.timeout) == ("https://school.instructure.com", "7", (3.05, 20.0))
    assert canvas_client().account_id == "7"


def test_a_students_token_replaces_the_admin_token(settings, canvas_sim):
    settings.CANVAS_BASE_URL = canvas_sim.base_url
    settings.CANVAS_ADMIN_TOKEN = canvas_sim.admin_token
    student = canvas_sim.make_user(student=True)

    assert canvas_client(student["token"]).get_user("self")["id"] == student["id"]
    assert admin_client().get_user("self")["id"] != student["id"]


def test_a_missing_student_token_never_becomes_the_admin(settings):
    settings.CANVAS_ADMIN_TOKEN = "admin-t0ken"

    with pytest.raises(ValueError):
        canvas_client(None)
    with pytest.raises(ValueError):
        canvas_client("")


def test_it_fails_loudly_without_an_admin_token(settings):
    settings.CANVAS_ADMIN_TOKEN = ""

    with pytest.raises(ImproperlyConfigured):
        admin_client()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (42, "42"),
        ("42", "42"),
        ("self", "self"),
        ("sis_user_id:A1234/2011", "sis_user_id:A1234%2F2011"),
        ("sis_login_id:ann@example.test", "sis_login_id:ann%40example.test"),
    ],
)
def test_user_ids_go_into_paths_quoted(given, expected):
    assert user_ref(given) == expected


@pytest.mark.parametrize("given", [0, -1, True, "", "../admin", "sis_user_id:", "someone"])
def test_it_refuses_what_is_not_a_user_id(given):
    with pytest.raises((ValueError, TypeError)):
        user_ref(given)
