"""The language switch in every page's header, and the language a signed-in person keeps.

Anyone may switch (a cookie, Django's set_language); a signed-in person's choice is also saved, and it
is the language they get the next time they sign in, on any browser, whatever that browser asks for.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client
from django.urls import reverse

from linking.models import LanguagePreference, Parent
from tests.accounts.conftest import code_from_last_email
from tests.staff.conftest import (  # noqa: F401
    PASSWORD,
    anonymous,
    fast_accounts,
    mfa_client,
    parent_b,
    password_client,
    staff,
    student,
)

ENGLISH_BROWSER = {"HTTP_ACCEPT_LANGUAGE": "en-US,en;q=0.9"}


def page_language(client: Client, url: str = "/", browser: dict = ENGLISH_BROWSER) -> str:
    page = client.get(url, **browser).content.decode()
    return page.split('<html lang="', 1)[1].split('"', 1)[0]


def switch(client: Client, language: str, next_url: str = "/"):
    return client.post(reverse("language_set"), {"language": language, "next": next_url}, **ENGLISH_BROWSER)


def saved_language(user) -> str | None:
    return LanguagePreference.objects.filter(user=user).values_list("language", flat=True).first()


def test_every_page_offers_each_language_in_its_own_words(anonymous):
    page = anonymous.client.get("/", **ENGLISH_BROWSER).content.decode()

    assert f'action="{reverse("language_set")}"' in page
    assert '<span lang="en" aria-current="true">English</span>' in page
    assert 'name="language" value="es" lang="es">Español</button>' in page


def test_a_visitor_switches_with_a_cookie_and_nothing_is_saved(anonymous):
    response = switch(anonymous.client, "es", "/accounts/login/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "es"
    assert page_language(anonymous.client) == "es"
    page = anonymous.client.get("/", **ENGLISH_BROWSER).content.decode()
    assert '<span lang="es" aria-current="true">Español</span>' in page
    assert 'value="en" lang="en">English</button>' in page
    assert not LanguagePreference.objects.exists()


def test_the_switch_goes_back_to_the_page_with_its_code_but_never_to_another_site(anonymous):
    add_child = reverse("add_child") + "?code=aB3xZ9"
    assert switch(anonymous.client, "es", add_child)["Location"] == add_child
    assert switch(anonymous.client, "es", "https://evil.example/")["Location"] == "/"


def test_a_parent_who_switches_keeps_spanish_after_signing_out_and_in_again(parent_b):
    browser = password_client(parent_b.user)
    assert page_language(browser) == "en"

    switch(browser, "es")

    assert saved_language(parent_b.user) == "es"
    assert Parent.objects.get(pk=parent_b.parent.pk).locale == "es"
    assert page_language(browser) == "es"
    browser.post(reverse("account_logout"))

    # Another browser, which asks for English and has never seen the portal.
    another = password_client(parent_b.user, Client())
    assert another.cookies[settings.LANGUAGE_COOKIE_NAME].value == "es"
    assert page_language(another) == "es"
    assert page_language(another, reverse("parent_home")) == "es"

    switch(another, "en")
    assert saved_language(parent_b.user) == "en"
    assert page_language(another) == "en"
    assert page_language(password_client(parent_b.user, Client())) == "en"


def test_signing_in_replaces_the_language_the_visitor_was_browsing_in(parent_b):
    browser = Client()
    switch(browser, "en")  # the cookie of a visit before signing in
    LanguagePreference.objects.create(user=parent_b.user, language="es")

    password_client(parent_b.user, browser)

    assert page_language(browser) == "es"


def test_a_student_and_staff_keep_their_language_too(student, staff):
    switch(student.client, "es")
    switch(staff.client, "es")

    assert saved_language(student.user) == "es"
    assert saved_language(staff.user) == "es"
    for_student = Client()
    for_student.force_login(student.user, backend=settings.AUTHENTICATION_BACKENDS[0])
    assert page_language(for_student, reverse("student_home")) == "es"
    assert page_language(mfa_client(staff.user, Client()), reverse("staff_home")) == "es"


def test_someone_who_never_chose_gets_their_browsers_language(parent_b):
    browser = password_client(parent_b.user)

    assert saved_language(parent_b.user) is None
    assert page_language(browser) == "en"
    assert page_language(browser, browser={"HTTP_ACCEPT_LANGUAGE": "es"}) == "es"


@pytest.mark.parametrize("language", ["fr", "", "nul\x00"])
def test_a_language_the_portal_does_not_offer_is_not_saved(parent_b, language):
    response = switch(parent_b.client, language)

    assert response.status_code == 302
    assert saved_language(parent_b.user) is None
    assert page_language(parent_b.client) == "en"


def test_a_parent_who_signs_up_in_spanish_reads_spanish_once_signed_in(client):
    signup = {"name": "Lucía Pérez", "email": "lucia@example.test", "password1": PASSWORD}
    client.post(reverse("account_signup"), signup, HTTP_ACCEPT_LANGUAGE="es-MX,es;q=0.9")

    assert saved_language(Parent.objects.get(user__email="lucia@example.test").user) == "es"
    assert mail.outbox[-1].subject.startswith("Portal para Familias: ")
    code = code_from_last_email("lucia@example.test")
    response = client.post(reverse("account_email_verification_sent"), {"code": code}, **ENGLISH_BROWSER)

    assert response.status_code == 302
    assert client.session.get("_auth_user_id")
    assert page_language(client, reverse("parent_home")) == "es"


def test_the_switch_comes_back_with_the_query_on_a_page_and_without_it_on_an_error_page(anonymous):
    # A QR code's "Add a child" link carries the code: switching language must keep it.
    page = anonymous.client.get("/accounts/login/?next=/family/add/%3Fcode%3DZq7pR2").content.decode()
    assert 'name="next" value="/accounts/login/?next=/family/add/%3Fcode%3DZq7pR2"' in page

    # An error page echoes nothing an address carried.
    missing = anonymous.client.get("/no-such-page/?token=s3cr3t").content.decode()
    assert 'name="next" value="/no-such-page/"' in missing
    assert "s3cr3t" not in missing
