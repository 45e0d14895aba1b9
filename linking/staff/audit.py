"""Staff console: the audit log. Browse and filter it, export it as CSV, check its hash chain."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_POST

from linking.audit.export import audit_events_csv
from linking.audit.models import AuditEvent
from linking.audit.selectors import (
    SUBJECT_INT_KEYS,
    SUBJECT_UUID_KEYS,
    audit_actions,
    audit_actor_emails,
    audit_event_list,
    audit_last_check,
    subject_match,
)
from linking.audit.services import OUTCOME, audit_chain_check, audit_export_record

from .access import staff_required

PAGE_SIZE = 50


class AuditFilterForm(forms.Form):
    action = forms.ChoiceField(required=False)
    actor_label = forms.ChoiceField(
        label=_("Actor"), required=False, choices=[("", _("Anyone")), *AuditEvent.ActorLabel.choices]
    )
    outcome = forms.CharField(required=False, max_length=32, help_text=_("Exact, such as ok, linked or broken."))
    date_from = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    subject = forms.CharField(
        label=_("Subject id"),
        required=False,
        max_length=100,
        help_text=_("A link request id, or a parent or student id."),
    )
    subject_key = forms.ChoiceField(
        label=_("as"),
        required=False,
        choices=[("", _("any")), *((key, key.replace("_", " ")) for key in SUBJECT_UUID_KEYS + SUBJECT_INT_KEYS)],
    )

    def __init__(self, *args, actions: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        prefixes = sorted({action.rsplit(".", 1)[0] + "." for action in actions})
        self.fields["action"].choices = [
            ("", _("Any action")),
            (_("Every action starting with"), [(prefix, f"{prefix}*") for prefix in prefixes]),
            (_("Action"), [(action, action) for action in actions]),
        ]

    def clean_outcome(self):
        outcome = self.cleaned_data["outcome"].strip()
        if outcome and not OUTCOME.fullmatch(outcome):
            raise forms.ValidationError(_("An outcome is a lowercase word such as ok or invalid_code."))
        return outcome

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", _("The range ends before it starts."))
        if data.get("subject"):
            try:
                subject_match(data["subject"], key=data.get("subject_key", ""))
            except ValueError as error:
                self.add_error("subject", str(error))
        return data

    def as_audit_data(self) -> dict:
        """The filters in use, as plain JSON for the ``audit.exported`` event."""
        return {
            name: value.isoformat() if hasattr(value, "isoformat") else value
            for name, value in self.cleaned_data.items()
            if value
        }


@require_GET
@staff_required
def audit_list(request):
    form = AuditFilterForm(request.GET, actions=audit_actions())
    events = audit_event_list(**form.cleaned_data) if form.is_valid() else AuditEvent.objects.none()
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    emails = audit_actor_emails(event.actor_id for event in page)
    rows = [(event, emails.get(event.actor_id, "")) for event in page]
    return render(
        request,
        "staff/audit/list.html",
        {"form": form, "page": page, "rows": rows, "last_check": audit_last_check()},
        status=400 if form.errors else 200,
    )


@require_GET
@staff_required
def audit_export(request):
    form = AuditFilterForm(request.GET, actions=audit_actions())
    if not form.is_valid():
        return HttpResponseBadRequest("Those filters are not valid; go back to the audit log and correct them.")
    up_to_id = audit_export_record(actor=request.user, filters=form.as_audit_data())
    events = audit_event_list(**form.cleaned_data)
    response = StreamingHttpResponse(
        audit_events_csv(events.filter(id__lte=up_to_id)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = 'attachment; filename="audit-log.csv"'
    return response


@require_POST
@staff_required
def audit_verify(request):
    result = audit_chain_check(actor=request.user, actor_label=AuditEvent.ActorLabel.STAFF)
    if result.ok:
        messages.success(request, f"Audit chain OK: {result.checked} events checked.")
    else:
        messages.error(request, f"Audit chain BROKEN at event {result.first_broken_id}: {result.reason}.")
    return redirect("staff_audit")


urlpatterns = [
    path("", audit_list, name="staff_audit"),
    path("export.csv", audit_export, name="staff_audit_export"),
    path("verify/", audit_verify, name="staff_audit_verify"),
]
