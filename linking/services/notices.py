"""Emails to parents about what the school decided, in the parent's language (else the staff member's)."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

from linking.models import LinkRequest, ObservationLink, Parent
from linking.services.languages import email_language


def _send(parent: Parent, template: str, context: dict, sender_language: str) -> None:
    with translation.override(email_language(recipient=parent, sender_language=sender_language)):
        context = {**context, "parent": parent, "dashboard_url": settings.PORTAL_BASE_URL + reverse("parent_home")}
        subject = render_to_string(f"linking/email/{template}_subject.txt", context).strip()
        message = EmailMultiAlternatives(
            subject=subject, body=render_to_string(f"linking/email/{template}_message.txt", context), to=[parent.email]
        )
        message.attach_alternative(render_to_string(f"linking/email/{template}_message.html", context), "text/html")
    message.send()


def link_request_rejected_send(*, link_request: LinkRequest, sender_language: str = "") -> None:
    _send(link_request.parent, "request_rejected", {"reason": link_request.review_reason}, sender_language)


def observation_link_revoked_send(*, link: ObservationLink, sender_language: str = "") -> None:
    context = {"student_name": link.student.name, "reason": link.remove_reason}
    _send(link.parent, "link_revoked", context, sender_language)
