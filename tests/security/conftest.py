"""Fixtures for the security tests, borrowed from the suites that own them, and a superuser persona."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache

from tests.audit.conftest import record_events  # noqa: F401
from tests.canvas_oauth.conftest import configured
from tests.security import production
from tests.staff.conftest import (  # noqa: F401
    Persona,
    anonymous,
    mfa_client,
    parent_a,
    parent_b,
    personas,
    staff,
    staff_admin,
    staff_member_make,
    student,
)


@pytest.fixture
def fast_passwords(settings, db):
    """tests/staff's ``fast_accounts``, but not autouse here (the fuzzing tests share this folder)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def canvas_sign_in(settings):
    """Offer "Sign in with Canvas" with the simulator's demo developer key (no request leaves the machine)."""
    settings.SOCIALACCOUNT_PROVIDERS = configured()


@pytest.fixture
def site_admin(db) -> Persona:
    """A Django superuser (the admin's only user), signed in with password and authenticator app."""
    user = staff_member_make("root@school.example", admin=True, name="Rita Root")
    get_user_model().objects.filter(pk=user.pk).update(is_staff=True, is_superuser=True)
    user.refresh_from_db()
    return Persona("site_admin", mfa_client(user), user)


@pytest.fixture(scope="session")
def static_root(tmp_path_factory):
    """The static files collected once a run for the production environment, as the Docker image has them."""
    return production.collect_static(tmp_path_factory.mktemp("static"))


@pytest.fixture
def production_server(transactional_db, tmp_path, static_root):
    """``runserver`` on this run's test database in a production environment; its log in ``.log``.

    The cache is memory rather than production's Redis, so that these tests need no Redis.
    """
    with production.production_server(
        tmp_path / "runserver.log", CACHE_URL="locmemcache://", STATIC_ROOT=str(static_root)
    ) as server:
        yield server
