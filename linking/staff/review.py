"""Staff console: review link requests, revoke links, hold pairs, flag students.

Each view takes four steps: check access (``staff_required``), validate a form, call one service from
``linking.services.review``, redirect with a message. A service that refuses (``ValueError``: the
request is no longer held, say) becomes a message on the page staff came from, never an error page.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from linking.models import LinkRequest, ObservationLink, PairHold, Student
from linking.selectors import (
    LIFTED_HOLDS_SHOWN,
    link_request_timeline,
    link_requests_for_review,
    pair_holds_for_review,
)
from linking.services.review import (
    link_request_approve,
    link_request_reject,
    link_request_retry,
    link_requests_approve,
    observation_link_revoke,
    pair_hold_create,
    pair_hold_lift,
    student_flag_set,
)
from linking.staff.access import staff_required
from linking.staff.forms import (
    ApproveManyForm,
    PairHoldForm,
    ReasonForm,
    RejectForm,
    ReviewFilterForm,
    RevokeForm,
    StudentFlagForm,
)

# Column headers that sort the list: (sort key, label).
SORTABLE_COLUMNS = [
    ("created", gettext_lazy("Made")),
    ("state", gettext_lazy("State")),
    ("parent", gettext_lazy("Parent")),
    ("student", gettext_lazy("Student")),
]


def _next_url(request: HttpRequest, fallback: str) -> str:
    """Where to go back to: the form's ``next`` if it is a path on this site, else ``fallback``."""
    candidate = request.POST.get("next", "")
    # Only a path: redirect() would take any other word for the name of a view to reverse.
    if candidate.startswith("/") and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return fallback


def _refused(request: HttpRequest, error: ValueError, to: str) -> HttpResponse:
    messages.error(request, str(error))
    return redirect(to)


# -- link requests --------------------------------------------------------------------------------
@require_GET
@staff_required
def request_list(request: HttpRequest) -> HttpResponse:
    form = ReviewFilterForm(request.GET)
    filters = form.filters()
    per_page = form.per_page_value()
    page = Paginator(link_requests_for_review(filters), per_page).get_page(request.GET.get("page"))
    return render(
        request,
        "staff/review/request_list.html",
        {
            "form": form,
            "page": page,
            "columns": _sort_columns(filters.sort),
            "held": LinkRequest.State.HELD,
            "next": request.get_full_path(),
        },
        # The valid filters still narrow the list; the invalid ones are shown with their errors.
        status=400 if form.errors else 200,
    )


def _sort_columns(current: str) -> list[dict]:
    columns = []
    for key, label in SORTABLE_COLUMNS:
        ascending, descending = current == key, current == f"-{key}"
        columns.append(
            {
                "label": label,
                # A second click on the sorted column reverses it; the date starts newest first.
                "sort": f"-{key}" if ascending or (key == "created" and not descending) else key,
                "aria_sort": "ascending" if ascending else "descending" if descending else "",
            }
        )
    return columns


@require_GET
@staff_required
def request_detail(request: HttpRequest, pk) -> HttpResponse:
    link_request = get_object_or_404(
        LinkRequest.objects.select_related("parent__user", "student", "reviewed_by"), pk=pk
    )
    links = list(link_request.observation_links.select_related("student").order_by("created_at"))
    return render(
        request,
        "staff/review/request_detail.html",
        {
            "link_request": link_request,
            "links": links,
            "timeline": link_request_timeline(link_request),
        },
    )


@require_POST
@staff_required
def request_approve(request: HttpRequest, pk) -> HttpResponse:
    link_request = get_object_or_404(LinkRequest, pk=pk)
    back = reverse("staff_request_detail", args=[link_request.pk])
    try:
        link_request_approve(link_request=link_request, by=request.user)
    except ValueError as error:
        return _refused(request, error, back)
    messages.success(request, _("Approved: the portal is linking them now."))
    return redirect(back)


@require_POST
@staff_required
def requests_approve_many(request: HttpRequest) -> HttpResponse:
    back = _next_url(request, reverse("staff_requests"))
    form = ApproveManyForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Select at least one held request to approve."))
        return redirect(back)
    chosen = list(form.cleaned_data["link_requests"])
    try:
        approved = link_requests_approve(link_requests=chosen, by=request.user)
    except ValueError as error:
        return _refused(request, error, back)
    if approved < len(chosen):
        text = _("Approved %(approved)d of %(chosen)d selected requests; the others were no longer held.")
    else:
        text = ngettext(
            "Approved %(approved)d request: the portal is linking it now.",
            "Approved %(approved)d requests: the portal is linking them now.",
            approved,
        )
    messages.success(request, text % {"approved": approved, "chosen": len(chosen)})
    return redirect(back)


@require_http_methods(["GET", "POST"])
@staff_required
def request_reject(request: HttpRequest, pk) -> HttpResponse:
    link_request = get_object_or_404(LinkRequest.objects.select_related("parent__user", "student"), pk=pk)
    back = reverse("staff_request_detail", args=[link_request.pk])
    form = RejectForm(request.POST if request.method == "POST" else None)
    if not form.is_valid():
        status = 400 if form.is_bound else 200
        return render(
            request, "staff/review/request_reject.html", {"link_request": link_request, "form": form}, status=status
        )
    try:
        link_request_reject(link_request=link_request, by=request.user, reason=form.cleaned_data["reason"])
    except ValueError as error:
        return _refused(request, error, back)
    messages.success(request, _("Declined. We're emailing the parent."))
    return redirect(back)


@require_POST
@staff_required
def request_retry(request: HttpRequest, pk) -> HttpResponse:
    link_request = get_object_or_404(LinkRequest, pk=pk)
    try:
        retried = link_request_retry(link_request=link_request, by=request.user)
    except ValueError as error:
        return _refused(request, error, reverse("staff_request_detail", args=[link_request.pk]))
    messages.success(request, _("Trying again: the portal is linking them now."))
    return redirect("staff_request_detail", pk=retried.pk)


# -- links, holds, students -----------------------------------------------------------------------
@require_http_methods(["GET", "POST"])
@staff_required
def link_revoke(request: HttpRequest, pk) -> HttpResponse:
    link = get_object_or_404(ObservationLink.objects.select_related("parent__user", "student"), pk=pk)
    back = (
        reverse("staff_request_detail", args=[link.link_request_id])
        if link.link_request_id
        else reverse("staff_requests")
    )
    form = RevokeForm(request.POST if request.method == "POST" else None)
    if not form.is_valid():
        status = 400 if form.is_bound else 200
        context = {"link": link, "form": form, "back": back}
        return render(request, "staff/review/link_revoke.html", context, status=status)
    try:
        observation_link_revoke(link=link, by=request.user, reason=form.cleaned_data["reason"])
    except ValueError as error:
        return _refused(request, error, back)
    messages.success(request, _("We're removing the link in Canvas and telling the parent."))
    return redirect(back)


@require_GET
@staff_required
def hold_list(request: HttpRequest) -> HttpResponse:
    active, lifted = pair_holds_for_review()
    return render(
        request,
        "staff/review/hold_list.html",
        {"active": active, "lifted": lifted, "lifted_shown": LIFTED_HOLDS_SHOWN, "lift_form": ReasonForm()},
    )


@require_http_methods(["GET", "POST"])
@staff_required
def hold_new(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = PairHoldForm(request.POST)
    else:
        form = PairHoldForm(
            initial={"student": request.GET.get("student"), "parent_email": request.GET.get("parent_email")}
        )
    if request.method == "GET" or not form.is_valid():
        status = 400 if form.is_bound else 200
        return render(request, "staff/review/hold_new.html", {"form": form, **_prefilled(form)}, status=status)
    data = form.cleaned_data
    try:
        pair_hold_create(
            student=data["student"], parent_email=data["parent_email"], reason=data["reason"], by=request.user
        )
    except ValueError as error:
        return _refused(request, error, reverse("staff_holds"))
    messages.success(
        request,
        _("%(email)s can no longer be linked to %(student)s. Any current link is being removed.")
        % {"email": data["parent_email"], "student": data["student"].name},
    )
    return redirect("staff_holds")


def _prefilled(form: PairHoldForm) -> dict:
    # The student came from a request's page: show who it is instead of asking again.
    student_id = str(form["student"].value() or "")
    # isdigit() alone lets through "²" and other digits int() cannot read.
    student = Student.objects.filter(pk=student_id).first() if student_id.isascii() and student_id.isdigit() else None
    return {"prefilled_student": student}


@require_POST
@staff_required
def hold_lift(request: HttpRequest, pk) -> HttpResponse:
    hold = get_object_or_404(PairHold.objects.select_related("student"), pk=pk)
    form = ReasonForm(request.POST)
    if not form.is_valid():
        active, lifted = pair_holds_for_review()
        context = {
            "active": active,
            "lifted": lifted,
            "lifted_shown": LIFTED_HOLDS_SHOWN,
            "lift_form": ReasonForm(),
            "failed_hold": hold,
            "failed_form": form,
        }
        return render(request, "staff/review/hold_list.html", context, status=400)
    try:
        pair_hold_lift(hold=hold, by=request.user, reason=form.cleaned_data["reason"])
    except ValueError as error:
        return _refused(request, error, reverse("staff_holds"))
    messages.success(
        request,
        _("Lifted the hold on %(email)s and %(student)s.") % {"email": hold.parent_email, "student": hold.student.name},
    )
    return redirect("staff_holds")


@require_POST
@staff_required
def student_flag(request: HttpRequest, pk: int) -> HttpResponse:
    student = get_object_or_404(Student, pk=pk)
    back = _next_url(request, reverse("staff_requests"))
    form = StudentFlagForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose whether to flag or unflag the student."))
        return redirect(back)
    flagged = form.cleaned_data["flagged"]
    try:
        student_flag_set(student=student, flagged=flagged, by=request.user)
    except ValueError as error:
        return _refused(request, error, back)
    messages.success(
        request,
        (_("Flagged %(name)s: their new links will wait for review.") if flagged else _("Unflagged %(name)s."))
        % {"name": student.name},
    )
    return redirect(back)


urlpatterns = [
    path("requests/", request_list, name="staff_requests"),
    path("requests/approve/", requests_approve_many, name="staff_requests_approve_many"),
    path("requests/<uuid:pk>/", request_detail, name="staff_request_detail"),
    path("requests/<uuid:pk>/approve/", request_approve, name="staff_request_approve"),
    path("requests/<uuid:pk>/reject/", request_reject, name="staff_request_reject"),
    path("requests/<uuid:pk>/retry/", request_retry, name="staff_request_retry"),
    path("links/<uuid:pk>/revoke/", link_revoke, name="staff_link_revoke"),
    path("holds/", hold_list, name="staff_holds"),
    path("holds/new/", hold_new, name="staff_hold_new"),
    path("holds/<uuid:pk>/lift/", hold_lift, name="staff_hold_lift"),
    path("students/<int:pk>/flag/", student_flag, name="staff_student_flag"),
]
