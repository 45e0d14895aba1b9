"""Personas and helpers for the account pages: a parent made as allauth would make one."""

import re

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.cache import cache

from linking.services.people import parent_register

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def fast_accounts(settings, db):
    # Hashing with the real hasher costs ~0.3 s a password; allauth's rate limits live in the cache.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def parent():
    """A parent who signed up and verified their email address."""
    user = get_user_model().objects.create_user(username="maria", email="maria@example.com", password=PASSWORD)
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return parent_register(user=user, name="Maria Garcia")


def code_from_last_email(to: str) -> str:
    """The code in the last email sent, which must have gone to `to`: allauth puts it on a line of its own."""
    message = mail.outbox[-1]
    assert message.to == [to]
    match = re.search(r"^\s*([A-Z0-9]{4,}(?:-[A-Z0-9]+)*)\s*$", message.body, re.MULTILINE)
    assert match, message.body
    return match.group(1)


def signed_in_user_id(client) -> str | None:
    return client.session.get("_auth_user_id")
