"""A new parent's Canvas account is made in the parent's language, through the real worker and simulator."""

from __future__ import annotations

from django.test import Client
from django.urls import reverse

from linking.models import LinkRequest, Parent
from linking.services.links import link_requests_submit
from tests.accounts.conftest import code_from_last_email
from tests.linking.test_link_requests import finished


def canvas_locale(family, parent: Parent):
    parent.refresh_from_db()
    return family.admin().get_user(parent.canvas_user_id)["locale"]


def test_a_parent_who_signs_up_in_spanish_gets_a_spanish_canvas_account(family):
    student = family.student()
    email = f"{family.sim.unique('parent')}@example.test"
    browser = Client(HTTP_ACCEPT_LANGUAGE="es-MX,es;q=0.9")
    browser.post(reverse("account_signup"), {"name": "Lucía Pérez", "email": email, "password1": "una frase larga"})
    browser.post(reverse("account_email_verification_sent"), {"code": code_from_last_email(email)})

    response = browser.post(reverse("add_child"), {"codes": family.code_for(student)})

    assert response.status_code == 302
    request = LinkRequest.objects.get(parent__user__email=email)
    assert finished(request).state == LinkRequest.State.LINKED
    assert canvas_locale(family, request.parent) == "es"


def test_a_parent_who_switches_to_spanish_before_linking_gets_a_spanish_canvas_account(family):
    student, parent = family.student(), family.parent()
    browser = Client()
    browser.force_login(parent.user)
    browser.post(reverse("language_set"), {"language": "es"})

    [request] = link_requests_submit(parent=parent, codes=[family.code_for(student)]).created

    assert finished(request).state == LinkRequest.State.LINKED
    assert canvas_locale(family, parent) == "es"


def test_a_parent_who_never_chose_leaves_the_language_to_canvas(family):
    student, parent = family.student(), family.parent()

    [request] = link_requests_submit(parent=parent, codes=[family.code_for(student)]).created

    assert finished(request).state == LinkRequest.State.LINKED
    assert canvas_locale(family, parent) is None
