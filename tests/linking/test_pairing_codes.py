"""Students' pairing codes: asked for in the portal, made in Canvas by the worker."""

from __future__ import annotations

import re

from allauth.socialaccount.models import SocialToken
from django.core import mail
from django.test import override_settings

from linking.audit.models import AuditEvent
from linking.models import PairingCode
from linking.services.codes import (
    pairing_code_email_deliver,
    pairing_code_fetch,
    pairing_code_request,
    spell_code,
)
from linking.tasks import pairing_code_clients
from tests.workers import wait_for


def settled(code: PairingCode) -> PairingCode:
    def check():
        code.refresh_from_db()
        return code if code.state in (PairingCode.State.ACTIVE, PairingCode.State.FAILED) else None

    return wait_for(check, message=f"pairing code {code.pk} to be made or refused")


def test_a_student_gets_a_code_made_with_their_own_canvas_token(family):
    student = family.student()
    code = settled(pairing_code_request(student=student, by=student.user))

    assert code.state == PairingCode.State.ACTIVE
    assert re.fullmatch(r"[A-Za-z0-9]{6}", code.code)
    assert 6 <= code.days_left <= 7
    event = AuditEvent.objects.get(action="pairing_code.created")
    assert event.data["acting_as"] == "student"
    assert code.code not in str(AuditEvent.objects.values_list("data", "subject", "canvas_calls"))
    # The code works in Canvas: a parent can redeem it.
    parent = family.sim.make_user()
    assert family.admin().link_with_pairing_code(parent["id"], code.code)["id"] == student.canvas_user_id


def test_the_admin_token_stands_in_when_the_students_sign_in_is_gone(family):
    student = family.student()
    SocialToken.objects.filter(account__user=student.user).update(token="revoked-long-ago")
    code = settled(pairing_code_request(student=student, by=student.user))

    assert code.state == PairingCode.State.ACTIVE
    assert AuditEvent.objects.get(action="pairing_code.created").data["acting_as"] == "admin"


def test_a_student_not_enrolled_yet_is_told_so(family):
    student = family.student(enrolled=False)
    code = settled(pairing_code_request(student=student, by=student.user))

    assert (code.state, code.failure) == (PairingCode.State.FAILED, PairingCode.Failure.NOT_ENROLLED)
    assert "not enrolled in any course" in code.advice
    assert AuditEvent.objects.get(action="pairing_code.refused").outcome == "not_enrolled"


def test_a_school_with_parent_sign_up_off_is_named_as_the_reason(family):
    student = family.student()
    family.sim.configure(self_registration="none")
    code = settled(pairing_code_request(student=student, by=student.user))

    assert code.failure == PairingCode.Failure.SIGNUP_DISABLED
    assert "turned off parent sign-up" in code.advice


def test_without_any_token_the_student_is_asked_to_sign_in_again(family):
    student = family.student(with_token=False)
    # Saved without queueing: this test drives the worker's steps itself.
    code = PairingCode.objects.create(student=student, requested_by=student.user)
    with override_settings(CANVAS_ADMIN_TOKEN=""):
        clients = pairing_code_clients(code)
    assert clients == []
    pairing_code_fetch(pairing_code=code, clients=clients)

    code.refresh_from_db()
    assert (code.state, code.failure) == (PairingCode.State.FAILED, PairingCode.Failure.SIGNED_OUT)
    assert "Sign in with Canvas again" in code.advice


def test_a_code_mailed_to_a_parent_spells_it_out_and_links_to_the_portal(family):
    student = family.student()
    code = settled(pairing_code_request(student=student, by=student.user))
    mail.outbox.clear()
    pairing_code_email_deliver(pairing_code=code, to="parent@example.test")

    [message] = mail.outbox
    assert message.to == ["parent@example.test"]
    assert student.name in message.subject
    assert code.code in message.body
    assert f"/family/add/?code={code.code}" in message.body
    html = message.alternatives[0][0]
    assert code.code in html


def test_look_alike_characters_are_spelled_out():
    assert spell_code("Il1O0a") == [
        ("I", "capital i"),
        ("l", "lower-case L"),
        ("1", "the digit one"),
        ("O", "capital o"),
        ("0", "the digit zero"),
        ("a", "lower-case a"),
    ]
