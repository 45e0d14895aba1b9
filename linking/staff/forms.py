"""Forms for the staff console's review pages: list filters, reasons, holds."""

from __future__ import annotations

from html import escape

from django import forms
from django.forms.utils import flatatt
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from linking.models import Course, LinkRequest, Student
from linking.selectors import DEFAULT_REVIEW_SORT, ReviewFilters, review_schools

PAGE_SIZES = (25, 50, 100)
SORT_CHOICES = [
    ("-created", _("Newest first")),
    ("created", _("Oldest first")),
    ("state", _("State, A to Z")),
    ("-state", _("State, Z to A")),
    ("parent", _("Parent name, A to Z")),
    ("-parent", _("Parent name, Z to A")),
    ("student", _("Student name, A to Z")),
    ("-student", _("Student name, Z to A")),
]


class DateInput(forms.DateInput):
    input_type = "date"


class LongSelect(forms.Select):
    """A ``<select>`` of many flat options (a district's two thousand courses), written out in Python.

    Django builds a dictionary and renders a template for each option, which for two thousand of them
    costs more than the rest of the page (65 ms here, against 1). The markup is Django's; every label is
    escaped, even one marked safe.
    """

    def render(self, name, value, attrs=None, renderer=None):
        chosen = set(self.format_value(value))
        options = "".join(
            f'<option value="{escape(str(option))}"{" selected" if str(option) in chosen else ""}>'
            f"{escape(str(label))}</option>"
            for option, label in self.choices
        )
        attrs = flatatt(self.build_attrs(self.attrs, attrs))
        return mark_safe(f'<select name="{escape(name)}"{attrs}>{options}</select>')  # noqa: S308 - escaped above


class ReviewFilterForm(forms.Form):
    """The review list's query string. Invalid fields are reported and ignored; valid ones still narrow."""

    q = forms.CharField(
        label=_("Search"),
        required=False,
        max_length=200,
        help_text=_("Student name or SIS id, parent name or email."),
    )
    state = forms.ChoiceField(label=_("State"), required=False, choices=[("", _("Any"))] + LinkRequest.State.choices)
    held_rule = forms.ChoiceField(
        label=_("Held by rule"), required=False, choices=[("", _("Any"))] + LinkRequest.Rule.choices
    )
    created_from = forms.DateField(label=_("Made on or after"), required=False, widget=DateInput)
    created_to = forms.DateField(label=_("Made on or before"), required=False, widget=DateInput)
    course = forms.ModelChoiceField(
        label=_("Course"),
        required=False,
        queryset=Course.objects.order_by("name"),
        empty_label=_("Any"),
        widget=LongSelect,
    )
    school = forms.TypedChoiceField(label=_("School"), required=False, coerce=int, empty_value=None)
    sort = forms.ChoiceField(label=_("Sort by"), required=False, choices=SORT_CHOICES)
    per_page = forms.TypedChoiceField(
        label=_("Per page"),
        required=False,
        coerce=int,
        empty_value=PAGE_SIZES[0],
        choices=[(size, str(size)) for size in PAGE_SIZES],
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["school"].choices = [("", _("Any"))] + [
            (account_id, _("Canvas account %(id)s") % {"id": account_id}) for account_id in review_schools()
        ]

    def filters(self) -> ReviewFilters:
        self.is_valid()
        data = {name: value for name, value in self.cleaned_data.items() if value not in (None, "")}
        return ReviewFilters(
            state=data.get("state", ""),
            created_from=data.get("created_from"),
            created_to=data.get("created_to"),
            course=data.get("course"),
            school=data.get("school"),
            held_rule=data.get("held_rule", ""),
            q=data.get("q", ""),
            sort=data.get("sort", DEFAULT_REVIEW_SORT),
        )

    def per_page_value(self) -> int:
        self.is_valid()
        return self.cleaned_data.get("per_page") or PAGE_SIZES[0]


class ApproveManyForm(forms.Form):
    link_requests = forms.ModelMultipleChoiceField(
        queryset=LinkRequest.objects.select_related("parent"),
        error_messages={"required": _("Select at least one held request to approve.")},
    )


REASON_REQUIRED = _("Give a reason; it is kept in the audit log.")


class ReasonForm(forms.Form):
    reason_help = _("Kept in the audit log.")

    reason = forms.CharField(
        label=_("Reason"),
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        error_messages={"required": REASON_REQUIRED},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reason"].help_text = self.reason_help

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError(REASON_REQUIRED)
        return reason


class RejectForm(ReasonForm):
    reason_help = _("The parent reads it in the email telling them the school declined. Kept in the audit log.")


class RevokeForm(ReasonForm):
    reason_help = _("Kept in the audit log. The parent is told the link was removed.")


class PairHoldForm(ReasonForm):
    """A hold on a student (given by id when prefilled, else found by SIS id or exact name) and an email."""

    reason_help = _("For example the court order's reference. Kept in the audit log.")

    student = forms.ModelChoiceField(queryset=Student.objects.all(), required=False, widget=forms.HiddenInput)
    find_student = forms.CharField(
        label=_("Student"),
        required=False,
        max_length=255,
        help_text=_("The student's SIS id, or their full name as Canvas has it."),
    )
    parent_email = forms.EmailField(
        label=_("Parent's email"),
        help_text=_("The hold covers this email even before the parent has a portal account."),
    )

    field_order = ["student", "find_student", "parent_email", "reason"]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("student") is None and "student" not in self.errors:
            cleaned["student"] = self._find(cleaned.get("find_student", "").strip())
        return cleaned

    def _find(self, text: str) -> Student | None:
        if not text:
            self.add_error("find_student", _("Say which student: their SIS id or full name."))
            return None
        by_sis = list(Student.objects.filter(sis_user_id__iexact=text)[:2])
        matches = by_sis or list(Student.objects.filter(name__iexact=text)[:2])
        if len(matches) == 1:
            return matches[0]
        if matches:
            self.add_error("find_student", _("More than one student matches; use their SIS id."))
        else:
            self.add_error("find_student", _("No student the portal knows has this SIS id or name."))
        return None

    def clean_parent_email(self) -> str:
        return self.cleaned_data["parent_email"].strip().lower()


class StudentFlagForm(forms.Form):
    flagged = forms.TypedChoiceField(
        choices=[("true", _("Flag")), ("false", _("Unflag"))], coerce=lambda value: value == "true"
    )
