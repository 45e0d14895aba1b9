"""Emails to parents about what the school decided, in the parent's language."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

from linking.models import LinkRequest, ObservationLink, Parent


def _send(parent: Parent, template: str, context: dict) -> None:
    with translation.override(parent.locale or settings.LANGUAGE_CODE):
        context = {**context, "parent": parent, "dashboard_url": settings.PORTAL_BASE_URL + reverse("parent_home")}
        subject = render_to_string(f"linking/email/{template}_subject.txt", context).strip()
        message = EmailMultiAlternatives(
            subject=subject, body=render_to_string(f"linking/email/{template}_message.txt", context), to=[parent.email]
        )
        message.attach_alternative(render_to_string(f"linking/email/{template}_message.html", context), "text/html")
    message.send()


def link_request_rejected_send(*, link_request: LinkRequest) -> None:
    _send(link_request.parent, "request_rejected", {"reason": link_request.review_reason})


def observation_link_revoked_send(*, link: ObservationLink) -> None:
    _send(link.parent, "link_revoked", {"student_name": link.student.name, "reason": link.remove_reason})
