"""Where each person lands after signing in, and how the portal's messages name them (linking/accounts.py)."""

from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from linking.accounts import user_display
from tests.staff.conftest import staff_member_make, student_make

from .conftest import PASSWORD


def test_a_parent_lands_on_their_children_and_is_greeted_by_name(client, parent):
    response = client.post(reverse("account_login"), {"login": "maria@example.com", "password": PASSWORD})

    assert response["Location"] == reverse("parent_home")
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["Successfully signed in as Maria Garcia."]


def test_the_add_a_child_link_of_a_qr_code_still_comes_first(client, parent):
    add_child = reverse("add_child") + "?code=Zq7pR2"
    response = client.post(
        reverse("account_login"), {"login": "maria@example.com", "password": PASSWORD, "next": add_child}
    )

    assert response["Location"] == add_child


def test_staff_land_on_the_console(db):
    user = staff_member_make("sam.staff@school.example", mfa=False)
    response = Client().post(reverse("account_login"), {"login": user.email, "password": PASSWORD})

    assert response["Location"] == reverse("staff_home")


def test_a_student_is_named_by_their_canvas_name_and_anyone_else_by_email(db):
    student = student_make("Noah Kim")
    nobody = get_user_model().objects.create_user(username="canvas-77", email="someone@example.com")

    assert user_display(student.user) == "Noah Kim"
    assert user_display(nobody) == "someone@example.com"
