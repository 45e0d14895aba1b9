"""A student signs in with Canvas: the provider, the adapter and the callback, against the simulator."""

from __future__ import annotations

import pytest
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount, SocialToken
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import NoReverseMatch, reverse

from linking.models import Student

pytestmark = pytest.mark.django_db(transaction=True)


def landing_path() -> str:
    try:
        return reverse("student_home")
    except NoReverseMatch:
        return reverse("home")


def test_it_signs_a_student_in_and_lands_them_on_the_student_page(browser, s1001):
    response = browser.sign_in_with_canvas()

    assert response.status_code == 302, response.text
    assert response.headers["Location"] == landing_path()
    user = browser.signed_in_user()
    assert user is not None
    assert SocialAccount.objects.get(user=user, provider="canvas").uid == str(s1001["id"])
    student = Student.objects.get(canvas_user_id=s1001["id"])
    assert student.user == user
    assert student.name == s1001["name"]


def test_it_gives_the_student_no_password_and_a_username_from_the_canvas_id(signed_in_student, s1001):
    _browser, user = signed_in_student

    assert not user.has_usable_password()
    assert user.username == f"canvas-{s1001['id']}"


def test_it_asks_for_no_email_address_and_sends_no_verification_email(signed_in_student, mailoutbox):
    _browser, user = signed_in_student

    assert not EmailAddress.objects.filter(user=user).exists()
    assert mailoutbox == []


def test_it_stores_the_access_token_with_its_refresh_token_and_expiry(signed_in_student):
    _browser, user = signed_in_student

    token = SocialToken.objects.get(account__user=user, account__provider="canvas")
    assert token.token
    assert token.token_secret
    assert token.expires_at is not None


def test_it_reuses_the_same_user_when_the_student_signs_in_again(signed_in_student, make_browser):
    _first_browser, user = signed_in_student
    first_token = SocialToken.objects.get(account__user=user).token

    second_browser = make_browser()
    response = second_browser.sign_in_with_canvas()

    assert response.status_code == 302, response.text
    assert second_browser.signed_in_user() == user
    assert get_user_model().objects.count() == 1
    assert Student.objects.get().user == user
    assert SocialToken.objects.get(account__user=user).token != first_token


def test_it_gives_a_student_a_parent_already_linked_to_their_new_account(browser, s1001):
    Student.objects.create(canvas_user_id=s1001["id"], name="Known from a link")

    browser.sign_in_with_canvas()

    student = Student.objects.get(canvas_user_id=s1001["id"])
    assert student.user == browser.signed_in_user()
    assert student.name == s1001["name"]


def test_it_leaves_nobody_signed_in_when_the_student_cancels_at_canvas(browser):
    consent = browser.sign_in_at_canvas()

    response = browser.answer_consent(consent, "deny")

    assert response.status_code == 302
    assert response.headers["Location"] == reverse("socialaccount_login_cancelled")
    assert browser.signed_in_user() is None
    assert not SocialAccount.objects.exists()
    assert not Student.objects.exists()


def test_it_does_not_sign_a_student_into_a_parent_account_with_the_same_email(browser, s1001):
    parent = get_user_model().objects.create_user(username="parent", email=s1001["email"], password="x-pass-1234")
    EmailAddress.objects.create(user=parent, email=s1001["email"], verified=True, primary=True)

    browser.sign_in_with_canvas()

    student_user = browser.signed_in_user()
    assert student_user is not None
    assert student_user != parent
    assert not SocialAccount.objects.filter(user=parent).exists()


def test_it_refuses_to_add_canvas_to_a_signed_in_parents_account(browser):
    parent = get_user_model().objects.create_user(username="parent", email="p@example.test", password="x-pass-1234")
    client = Client()
    client.force_login(parent)
    browser.session.cookies.set("sessionid", client.cookies["sessionid"].value)

    response = browser.answer_consent(browser.sign_in_at_canvas(process="connect"), "accept")

    assert response.status_code == 302
    assert response.headers["Location"] == reverse("socialaccount_connections")
    assert not SocialAccount.objects.exists()
    assert not Student.objects.exists()
