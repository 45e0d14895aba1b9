"""Pages for students (make a code, hand it over) and parents (add children, see every link).

Each view fetches what it shows through an access-checking helper, validates a form, calls one
service and redirects. No view talks to Canvas: the worker does, and the pages poll for its results.
"""

from __future__ import annotations

from functools import wraps

import segno
from allauth.account.adapter import get_adapter as get_account_adapter
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.i18n import LANGUAGE_QUERY_PARAMETER, set_language

from linking.forms import AddChildForm, EmailCodeForm
from linking.languages import session_language_set
from linking.models import LinkRequest, ObservationLink, PairingCode, Parent, Student
from linking.services.codes import pairing_code_email, pairing_code_link_url, pairing_code_request, spell_code
from linking.services.guessing import CodeEntryRefused
from linking.services.languages import is_spoken, user_language_save
from linking.services.links import link_requests_submit, observation_link_remove_request

# Failed requests stay on the dashboard this long, so a parent sees why and what to do.
FAILED_SHOWN_FOR_DAYS = 14
CLOSED_UNLINKED = (LinkRequest.State.FAILED, LinkRequest.State.REJECTED)


def student_required(view):
    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        student = Student.objects.filter(user=request.user).first()
        if student is None:
            raise PermissionDenied("Only students who signed in with Canvas can make pairing codes.")
        return view(request, student, *args, **kwargs)

    return wrapper


def parent_required(view):
    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        parent = Parent.objects.filter(user=request.user).select_related("user").first()
        if parent is None:
            raise PermissionDenied("Only parent accounts can link to children.")
        return view(request, parent, *args, **kwargs)

    return wrapper


# -- everyone -------------------------------------------------------------------------------------
@require_POST
def language_set(request: HttpRequest) -> HttpResponse:
    """The header's language switch: Django's set_language (the cookie, then back to ``next`` when it is
    one of ours), and for a signed-in user also their saved language, which their next sign-in opens in."""
    response = set_language(request)
    language = request.POST.get(LANGUAGE_QUERY_PARAMETER, "")
    if request.user.is_authenticated and is_spoken(language):
        user_language_save(user=request.user, language=language)
        session_language_set(request, language)
    return response


# -- students -------------------------------------------------------------------------------------
@require_GET
@student_required
def student_home(request: HttpRequest, student: Student) -> HttpResponse:
    codes = [code for code in student.pairing_codes.all()[:20] if code.is_usable or code.is_pending]
    linked = ObservationLink.objects.current().filter(student=student).select_related("parent").order_by("parent__name")
    return render(
        request,
        "linking/student_home.html",
        {"student": student, "codes": codes, "linked": _distinct_parents(linked)},
    )


def _distinct_parents(links) -> list[ObservationLink]:
    # A pair linked on two root accounts is one parent to the student.
    seen, result = set(), []
    for link in links:
        if link.parent_id not in seen:
            seen.add(link.parent_id)
            result.append(link)
    return result


@require_POST
@student_required
def pairing_code_new(request: HttpRequest, student: Student) -> HttpResponse:
    code = pairing_code_request(student=student, by=request.user)
    return redirect("pairing_code_detail", pk=code.pk)


def _own_code(student: Student, pk) -> PairingCode:
    return get_object_or_404(PairingCode.objects.select_related("student"), pk=pk, student=student)


@require_GET
@student_required
def pairing_code_detail(request: HttpRequest, student: Student, pk) -> HttpResponse:
    code = _own_code(student, pk)
    return render(request, "linking/pairing_code.html", _code_context(code, email_form=EmailCodeForm()))


@require_GET
@student_required
def pairing_code_status(request: HttpRequest, student: Student, pk) -> HttpResponse:
    """The code's panel alone, which the page polls while Canvas is being asked."""
    code = _own_code(student, pk)
    response = render(request, "linking/_pairing_code_panel.html", _code_context(code, email_form=EmailCodeForm()))
    response["X-Pending"] = "1" if code.is_pending else "0"
    return response


@require_GET
@student_required
def pairing_code_card(request: HttpRequest, student: Student, pk) -> HttpResponse:
    code = _own_code(student, pk)
    if not code.is_usable:
        return redirect("pairing_code_detail", pk=code.pk)
    return render(request, "linking/pairing_code_card.html", _code_context(code))


@require_POST
@student_required
def pairing_code_email_view(request: HttpRequest, student: Student, pk) -> HttpResponse:
    code = _own_code(student, pk)
    if not code.is_usable:
        messages.error(request, _("This code can no longer be used. Make a new one."))
        return redirect("student_home")
    form = EmailCodeForm(request.POST)
    if not form.is_valid():
        return render(request, "linking/pairing_code.html", _code_context(code, email_form=form), status=400)
    pairing_code_email(pairing_code=code, to=form.cleaned_data["email"], by=request.user)
    messages.success(request, _("We're emailing the code to %(email)s.") % {"email": form.cleaned_data["email"]})
    return redirect("pairing_code_detail", pk=code.pk)


def _code_context(code: PairingCode, **extra) -> dict:
    context = {"code": code, **extra}
    if code.is_usable:
        link = pairing_code_link_url(code)
        context.update(
            link_url=link,
            add_child_url=settings.PORTAL_BASE_URL + reverse("add_child"),
            spelled=spell_code(code.code),
            qr_svg=segno.make(link, error="m").svg_inline(
                scale=5, border=2, title=_("QR code: scan it to open the portal with the code filled in")
            ),
        )
    return context


# -- parents --------------------------------------------------------------------------------------
@require_GET
@parent_required
def parent_home(request: HttpRequest, parent: Parent) -> HttpResponse:
    return render(request, "linking/parent_home.html", _dashboard(parent))


@require_GET
@parent_required
def parent_requests(request: HttpRequest, parent: Parent) -> HttpResponse:
    """The dashboard's changing part alone, which the page polls while requests are open."""
    context = _dashboard(parent)
    response = render(request, "linking/_parent_requests.html", context)
    response["X-Pending"] = "1" if context["pending"] else "0"
    return response


def _dashboard(parent: Parent) -> dict:
    since = timezone.now() - timezone.timedelta(days=FAILED_SHOWN_FOR_DAYS)
    requests = list(
        LinkRequest.objects.filter(parent=parent)
        .filter(Q(state__in=LinkRequest.OPEN_STATES) | Q(state__in=CLOSED_UNLINKED, finished_at__gte=since))
        .order_by("-created_at")
    )
    links = list(
        ObservationLink.objects.current()
        .filter(parent=parent)
        .select_related("student")
        .order_by("student__name", "root_account_id")
    )
    open_requests = [r for r in requests if r.is_open]
    return {
        "parent": parent,
        "links": links,
        "open_requests": open_requests,
        "failed_requests": [r for r in requests if r.state in CLOSED_UNLINKED],
        # Something the worker is still doing: the page keeps polling until it is done.
        "pending": bool(open_requests) or any(link.state == ObservationLink.State.REMOVING for link in links),
    }


@require_http_methods(["GET", "POST"])
# Unspent codes are as good as a password until redeemed: keep them out of any error report.
@sensitive_post_parameters("codes")
@parent_required
def add_child(request: HttpRequest, parent: Parent) -> HttpResponse:
    if request.method == "POST":
        form = AddChildForm(request.POST)
        if form.is_valid():
            source = LinkRequest.Source.QR if request.POST.get("source") == "qr" else LinkRequest.Source.TYPED
            try:
                submitted = link_requests_submit(
                    parent=parent,
                    codes=form.cleaned_data["codes"],
                    source=source,
                    address=get_account_adapter(request).get_client_ip(request),
                )
            except CodeEntryRefused as refused:
                # The codes stay in the form, so nothing typed is lost.
                form.add_error("codes", _code_entry_refused_message(refused))
                return render(request, "linking/add_child.html", {"form": form}, status=429)
            _report_submitted(request, submitted, form.look_alike_codes())
            return redirect("parent_home")
        return render(request, "linking/add_child.html", {"form": form}, status=400)
    prefilled = request.GET.get("code", "").strip()
    form = AddChildForm(initial={"codes": prefilled} if prefilled else None)
    return render(request, "linking/add_child.html", {"form": form, "from_qr": bool(prefilled)})


def _code_entry_refused_message(refused: CodeEntryRefused) -> str:
    if refused.until is not None:
        return _(
            "For your children's safety, entering codes is paused until %(until)s, because several codes "
            "in a row did not work. If you are sure of your codes, the school office can see this pause "
            "and lift it."
        ) % {"until": date_format(timezone.localtime(refused.until), "DATETIME_FORMAT")}
    if refused.remaining:
        return ngettext(
            "You can try %(count)d more code this hour. Enter fewer codes, or try again later.",
            "You can try %(count)d more codes this hour. Enter fewer codes, or try again later.",
            refused.remaining,
        ) % {"count": refused.remaining}
    return _(
        "You have tried as many codes as we allow in an hour. Please check your codes with your children "
        "and try again in an hour."
    )


def _report_submitted(request: HttpRequest, submitted, look_alikes: list[str]) -> None:
    count = len(submitted.created)
    if count:
        messages.success(
            request,
            _("Got it: we're linking you now. This page updates by itself.")
            if count == 1
            else _("Got all %(count)d codes: we're linking you now. This page updates by itself.") % {"count": count},
        )
    if submitted.already_open:
        messages.info(request, _("You had already entered one of these codes; it is still being linked."))
    for code in look_alikes:
        messages.warning(
            request,
            _(
                "The code %(code)s has characters that look alike (capital I, lower-case l, digit 1, "
                "capital O, digit 0). If it doesn't work, check each one with your child."
            )
            % {"code": code},
        )


@require_http_methods(["GET", "POST"])
@parent_required
def link_remove(request: HttpRequest, parent: Parent, pk) -> HttpResponse:
    link = get_object_or_404(
        ObservationLink.objects.current().select_related("student", "parent"), pk=pk, parent=parent
    )
    if request.method == "POST":
        observation_link_remove_request(link=link, by=request.user, actor_label="parent")
        messages.success(request, _("We're removing your link to %(name)s in Canvas.") % {"name": link.student.name})
        return redirect("parent_home")
    return render(request, "linking/link_remove.html", {"link": link})
