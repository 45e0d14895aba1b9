"""The emails to a family: in the family's own language when the portal knows it, else the sender's.

The code email a student sends and a decline a staff member sends are queued by their pages; the queued
task is then run here, as the worker would run it, so that the email lands in this process's outbox.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse

from linking.services.languages import user_language_save
from linking.tasks import link_request_rejected_notify, pairing_code_email_send
from tests.staff.conftest import fast_accounts, parent_a, parent_b, staff, student  # noqa: F401

SPANISH, ENGLISH = "es-US,es;q=0.9", "en-US,en;q=0.9"


def run_queued(queued, task) -> None:
    """Run what a page queued for ``task`` (on commit), here and now, as the worker would."""
    [message] = [call for call in queued if getattr(getattr(call.func, "__self__", None), "name", "") == task.name]
    task.apply(args=message.args, kwargs=message.keywords)


@pytest.fixture
def code_sent(student, django_capture_on_commit_callbacks):
    """The student presses "Send the code" to ``to``, reading the portal in ``browser``'s language."""

    def send(to: str, *, browser: str):
        code = student.own["pairing_code"]
        mail.outbox.clear()
        with django_capture_on_commit_callbacks() as queued:
            response = student.client.post(
                reverse("pairing_code_email", args=[code.pk]), {"email": to}, HTTP_ACCEPT_LANGUAGE=browser
            )
        assert response.status_code == 302
        run_queued(queued, pairing_code_email_send)
        [message] = mail.outbox
        assert message.to == [to]
        return message

    return send


def test_a_code_sent_to_a_parent_who_reads_spanish_is_in_spanish(parent_b, code_sent):
    user_language_save(user=parent_b.user, language="es")

    # The student reads the portal in English, and types the address as it comes.
    message = code_sent("Lee.Wong@Example.com", browser=ENGLISH)

    assert message.subject == "Sofia Garcia le envió un código de vinculación de Canvas"
    assert "Su código de vinculación: AbC123" in message.body
    assert "A mayúscula" in message.body and "b minúscula" in message.body
    assert "El código sirve una sola vez" in message.body
    assert "Your pairing code" not in message.body and "capital" not in message.body
    html = message.alternatives[0][0]
    assert "Vincúlese con su hijo o hija en el Portal para Familias" in html


def test_a_parent_who_chose_english_gets_english_from_a_student_reading_spanish(parent_b, code_sent):
    user_language_save(user=parent_b.user, language="en")

    message = code_sent("lee.wong@example.com", browser=SPANISH)

    assert message.subject == "Sofia Garcia sent you a Canvas pairing code"
    assert "Your pairing code: AbC123" in message.body


def test_a_code_sent_to_someone_the_portal_does_not_know_is_in_the_students_language(code_sent):
    in_spanish = code_sent("abuela@example.test", browser=SPANISH)
    in_english = code_sent("abuela@example.test", browser=ENGLISH)

    assert in_spanish.subject == "Sofia Garcia le envió un código de vinculación de Canvas"
    assert in_english.subject == "Sofia Garcia sent you a Canvas pairing code"


def decline(staff, link_request, *, browser: str, capture) -> None:
    mail.outbox.clear()
    with capture() as queued:
        response = staff.client.post(
            reverse("staff_request_reject", args=[link_request.pk]),
            {"reason": "No pudimos confirmar la tutela."},
            HTTP_ACCEPT_LANGUAGE=browser,
        )
    assert response.status_code == 302
    run_queued(queued, link_request_rejected_notify)


def test_a_decline_is_in_the_parents_language_whatever_the_staff_member_reads(
    parent_a, staff, django_capture_on_commit_callbacks
):
    user_language_save(user=parent_a.user, language="es")

    decline(staff, parent_a.own["request"], browser=ENGLISH, capture=django_capture_on_commit_callbacks)

    [message] = mail.outbox
    assert message.to == ["maria.garcia@example.com"]
    assert message.subject == "La escuela rechazó su solicitud de vínculo"
    assert "Motivo de la escuela: No pudimos confirmar la tutela." in message.body


def test_a_decline_to_a_parent_who_never_chose_is_in_the_staff_members_language(
    parent_a, staff, django_capture_on_commit_callbacks
):
    assert get_user_model().objects.get(pk=parent_a.user.pk).parent.locale == ""

    decline(staff, parent_a.own["request"], browser=SPANISH, capture=django_capture_on_commit_callbacks)

    [message] = mail.outbox
    assert message.subject == "La escuela rechazó su solicitud de vínculo"
