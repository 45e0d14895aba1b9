"""Pairing codes asked for through the portal: the student (or staff) asks, a worker gets the code."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from linking.audit.services import audit_event_record
from linking.canvas import (
    CanvasClient,
    CanvasInvalidToken,
    CanvasNotAuthorized,
    CanvasThrottled,
    CanvasTransient,
    record_canvas_calls,
)
from linking.models import PairingCode, Student
from linking.services.languages import email_language, parent_with_email
from linking.services.links import RetryLater

# A student is looking at the page while this runs: after this long, say "try again later".
GIVE_UP_AFTER = timedelta(minutes=3)


@transaction.atomic
def pairing_code_request(*, student: Student, by: AbstractBaseUser, actor_label: str = "student") -> PairingCode:
    """Save a pending code request and queue the worker that asks Canvas for it."""
    from linking.tasks import pairing_code_create

    code = PairingCode.objects.create(student=student, requested_by=by)
    audit_event_record(
        action="pairing_code.requested",
        actor=by,
        actor_label=actor_label,
        subject={"code_request": str(code.pk), "student": student.pk, "canvas_student": student.canvas_user_id},
    )
    pairing_code_create.delay_on_commit(str(code.pk))
    return code


def pairing_code_fetch(*, pairing_code: PairingCode, clients: list[tuple[str, CanvasClient]]) -> None:
    """Ask Canvas for the code with the first client that may (the student's token, then the admin's).

    Raises :class:`RetryLater` for outages and throttling.
    """
    student = pairing_code.student
    with record_canvas_calls() as calls:
        refusal = PairingCode.Failure.SIGNED_OUT
        for acting_as, canvas in clients:
            try:
                issued = canvas.create_pairing_code(student.canvas_user_id)
            except CanvasInvalidToken:
                continue  # the student's sign-in expired: the admin token may still do it
            except CanvasNotAuthorized:
                refusal = _why_refused(canvas, student)
                break
            except (CanvasTransient, CanvasThrottled) as exc:
                if timezone.now() - pairing_code.created_at > GIVE_UP_AFTER:
                    refusal = PairingCode.Failure.CANVAS_UNAVAILABLE
                    break
                # Repeating the POST is safe: an extra code cancels nothing and expires unused.
                raise RetryLater(str(exc)) from exc
            return _record_issued(pairing_code, issued.code, issued.expires_at, acting_as, calls)
        _record_refused(pairing_code, refusal, calls)


def _why_refused(canvas: CanvasClient, student: Student) -> str:
    """Canvas gives one 401 for "not enrolled yet" and "parent sign-up is off"; tell them apart."""
    try:
        enrolled = canvas.has_student_enrollment(student.canvas_user_id)
    except (CanvasNotAuthorized, CanvasTransient, CanvasThrottled):
        return PairingCode.Failure.NOT_AUTHORIZED
    return PairingCode.Failure.SIGNUP_DISABLED if enrolled else PairingCode.Failure.NOT_ENROLLED


@transaction.atomic
def _record_issued(pairing_code: PairingCode, code: str, expires_at, acting_as: str, calls: list[dict]) -> None:
    pairing_code.state = PairingCode.State.ACTIVE
    pairing_code.code = code
    pairing_code.expires_at = expires_at
    pairing_code.failure = ""
    pairing_code.save(update_fields=["state", "code", "expires_at", "failure", "updated_at"])
    audit_event_record(
        action="pairing_code.created",
        actor=pairing_code.requested_by,
        actor_label="worker",
        subject={
            "code_request": str(pairing_code.pk),
            "student": pairing_code.student_id,
            "canvas_student": pairing_code.student.canvas_user_id,
        },
        canvas_calls=calls,
        data={"acting_as": acting_as, "expires_at": expires_at.isoformat()},
    )


@transaction.atomic
def _record_refused(pairing_code: PairingCode, failure: str, calls: list[dict]) -> None:
    pairing_code.state = PairingCode.State.FAILED
    pairing_code.failure = failure
    pairing_code.save(update_fields=["state", "failure", "updated_at"])
    audit_event_record(
        action="pairing_code.refused",
        actor=pairing_code.requested_by,
        actor_label="worker",
        subject={"code_request": str(pairing_code.pk), "student": pairing_code.student_id},
        canvas_calls=calls,
        outcome=failure,
    )


@transaction.atomic
def pairing_code_email(*, pairing_code: PairingCode, to: str, by: AbstractBaseUser) -> None:
    """Queue an email of the code to the address the student typed, and record that it was sent.

    Called in the student's request: the language they are reading the portal in goes with it, for a
    family the portal does not know the language of.
    """
    from linking.tasks import pairing_code_email_send

    audit_event_record(
        action="pairing_code.emailed",
        actor=by,
        actor_label="student",
        subject={"code_request": str(pairing_code.pk), "student": pairing_code.student_id},
        personal={"to": to},
    )
    pairing_code_email_send.delay_on_commit(str(pairing_code.pk), to, translation.get_language() or "")


def pairing_code_link_url(pairing_code: PairingCode) -> str:
    """The portal's "add a child" page with this code filled in (what the QR code holds)."""
    query = urlencode({"code": pairing_code.code})
    return f"{settings.PORTAL_BASE_URL}{reverse('add_child')}?{query}"


def pairing_code_email_deliver(*, pairing_code: PairingCode, to: str, sender_language: str = "") -> None:
    """Email the code to ``to``: in the saved language of the parent with that address, if the portal
    has one, else in ``sender_language`` (the student's when they sent it)."""
    with translation.override(email_language(recipient=parent_with_email(to), sender_language=sender_language)):
        context = {
            "student_name": pairing_code.student.name,
            "code": pairing_code.code,
            "spelled": spell_code(pairing_code.code),
            "expires_at": pairing_code.expires_at,
            "link_url": pairing_code_link_url(pairing_code),
            "portal_url": settings.PORTAL_BASE_URL,
        }
        subject = render_to_string("linking/email/pairing_code_subject.txt", context).strip()
        message = EmailMultiAlternatives(
            subject=subject,
            body=render_to_string("linking/email/pairing_code_message.txt", context),
            to=[to],
        )
        message.attach_alternative(render_to_string("linking/email/pairing_code_message.html", context), "text/html")
    message.send()


LOOK_ALIKES = {
    "I": _("capital i"),
    "l": _("lower-case L"),
    "1": _("the digit one"),
    "O": _("capital o"),
    "0": _("the digit zero"),
    "o": _("lower-case o"),
}


def spell_code(code: str) -> list[tuple[str, str]]:
    """Each character with words for it, so ``I``, ``l`` and ``1`` cannot be mixed up when read out."""
    spelled = []
    for char in code:
        if char in LOOK_ALIKES:
            spelled.append((char, str(LOOK_ALIKES[char])))
        elif char.isdigit():
            spelled.append((char, str(_("digit %(digit)s")) % {"digit": char}))
        elif char.isupper():
            spelled.append((char, str(_("capital %(letter)s")) % {"letter": char}))
        else:
            spelled.append((char, str(_("lower-case %(letter)s")) % {"letter": char}))
    return spelled
