"""Staff console: pairing codes made by staff, and printable family letters in English or Spanish.

Codes staff ask for are made by the worker with the admin token (``linking.tasks.pairing_code_clients``);
the letter pages poll while codes are being made. A letter is rendered whole in the language chosen
with ``?lang=``, whatever language the staff member's browser prefers.
"""

from __future__ import annotations

import segno
from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from linking.models import Course, PairingCode, Student
from linking.services.codes import pairing_code_link_url, pairing_code_request, spell_code
from linking.services.courses import course_pairing_codes_request, courses_sync_request, staff_codes_latest
from linking.staff.access import staff_required
from linking.staff.forms import LongSelect

LETTER_LANGUAGES = [("en", "English"), ("es", "Español")]
SEARCH_LIMIT = 50
COURSES_PER_PAGE = 50


def _lang(request: HttpRequest) -> str:
    lang = request.GET.get("lang") or request.POST.get("lang") or "en"
    return lang if lang in dict(LETTER_LANGUAGES) else "en"


class LetterSearchForm(forms.Form):
    q = forms.CharField(label=gettext_lazy("Student name or SIS id"), required=False, max_length=100, strip=True)
    course = forms.ModelChoiceField(
        label=gettext_lazy("Or a course"), queryset=Course.objects.order_by("name"), required=False, widget=LongSelect
    )
    lang = forms.ChoiceField(label=gettext_lazy("Letter language"), choices=LETTER_LANGUAGES, required=False)


# -- picking ----------------------------------------------------------------------------------------
@require_GET
@staff_required
def letters_home(request: HttpRequest) -> HttpResponse:
    form = LetterSearchForm(request.GET or None)
    students = []
    if form.is_bound and form.is_valid():
        course = form.cleaned_data["course"]
        if course is not None:
            return redirect(
                _with_lang(reverse("staff_letters_course", args=[course.pk]), form.cleaned_data["lang"] or "en")
            )
        term = form.cleaned_data["q"]
        if term:
            students = list(
                Student.objects.filter(Q(name__icontains=term) | Q(sis_user_id__iexact=term)).order_by("name", "pk")[
                    :SEARCH_LIMIT
                ]
            )
    # A page of courses, each counting its students in a subquery of its own: a district has thousands.
    enrolled = Course.students.through.objects.filter(course=OuterRef("pk")).values("course")
    courses = Course.objects.order_by("name", "pk").annotate(
        student_count=Coalesce(Subquery(enrolled.annotate(count=Count("*")).values("count")), 0)
    )
    page = Paginator(courses, COURSES_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "staff/letters/home.html",
        {
            "form": form,
            "students": students,
            "searched": bool(form.is_bound and form.data.get("q")),
            "courses": page,
            "last_synced": Course.objects.exclude(synced_at=None).order_by("-synced_at").first(),
            "lang": _lang(request),
            "languages": LETTER_LANGUAGES,
        },
        status=400 if form.is_bound and form.errors else 200,
    )


@require_POST
@staff_required
def courses_sync_view(request: HttpRequest) -> HttpResponse:
    courses_sync_request(by=request.user)
    messages.success(request, _("Reading courses and students from Canvas. Reload this page in a minute."))
    return redirect("staff_letters")


# -- one student ------------------------------------------------------------------------------------
@require_POST
@staff_required
def code_new(request: HttpRequest, pk: int) -> HttpResponse:
    student = get_object_or_404(Student, pk=pk)
    # The form is read before anything is saved: a body Django refuses (too large, too many fields)
    # must leave no code behind a 400.
    lang = _lang(request)
    pairing_code_request(student=student, by=request.user, actor_label="staff")
    return redirect(_with_lang(reverse("staff_letters_student", args=[student.pk]), lang))


@require_GET
@staff_required
def letters_student(request: HttpRequest, pk: int) -> HttpResponse:
    student = get_object_or_404(Student.objects.select_related("user"), pk=pk)
    return _render_letters(request, [student], "staff/letters/student.html", student=student)


@require_GET
@staff_required
def letters_student_status(request: HttpRequest, pk: int) -> HttpResponse:
    student = get_object_or_404(Student.objects.select_related("user"), pk=pk)
    return _render_letters(request, [student], student=student)


# -- a course ---------------------------------------------------------------------------------------
@require_http_methods(["GET", "POST"])
@staff_required
def letters_course(request: HttpRequest, pk: int) -> HttpResponse:
    course = get_object_or_404(Course, pk=pk)
    if request.method == "POST":
        lang = _lang(request)  # read before anything is saved, as in code_new
        made = course_pairing_codes_request(course=course, by=request.user)
        messages.success(
            request,
            ngettext(
                "Making %(count)d new code; its letter appears when it is ready.",
                "Making %(count)d new codes; the letters appear as they are ready.",
                len(made),
            )
            % {"count": len(made)}
            if made
            else _("Every student already has a code; nothing new to make."),
        )
        return redirect(_with_lang(reverse("staff_letters_course", args=[course.pk]), lang))
    students = list(course.students.select_related("user").order_by("name", "pk"))
    return _render_letters(request, students, "staff/letters/course.html", course=course)


@require_GET
@staff_required
def letters_course_status(request: HttpRequest, pk: int) -> HttpResponse:
    course = get_object_or_404(Course, pk=pk)
    students = list(course.students.select_related("user").order_by("name", "pk"))
    return _render_letters(request, students, course=course)


# -- rendering --------------------------------------------------------------------------------------
def _render_letters(request: HttpRequest, students: list[Student], page: str | None = None, **extra):
    """The letters in their language, on ``page`` in the staff member's own language. Without ``page``, the
    letters alone, for the page's polling: ``X-Pending`` says whether a code is still being made, so the
    page stops polling when none is."""
    lang = _lang(request)
    codes = staff_codes_latest(students)
    with translation.override(lang):
        letters = [_letter(student, codes.get(student.pk)) for student in students]
        pending = any(letter["code"] is not None and letter["code"].is_pending for letter in letters)
        context = {
            "letters": letters,
            "lang": lang,
            "languages": LETTER_LANGUAGES,
            "pending": pending,
            "ready": sum(1 for letter in letters if letter["usable"]),
            "status_url": _status_url(extra, lang),
            **extra,
        }
        letters_html = render_to_string("staff/letters/_letters.html", context, request=request)
    if page is None:
        response = HttpResponse(letters_html)
        response["X-Pending"] = "1" if pending else "0"
        return response
    return render(request, page, {**context, "letters_html": letters_html})


def _status_url(extra: dict, lang: str) -> str:
    if "course" in extra:
        return _with_lang(reverse("staff_letters_course_status", args=[extra["course"].pk]), lang)
    return _with_lang(reverse("staff_letters_student_status", args=[extra["student"].pk]), lang)


def _letter(student: Student, code: PairingCode | None) -> dict:
    letter = {"student": student, "code": code, "usable": bool(code and code.is_usable)}
    if letter["usable"]:
        link = pairing_code_link_url(code)
        letter.update(
            add_child_url=settings.PORTAL_BASE_URL + reverse("add_child"),
            spelled=spell_code(code.code),
            qr_svg=segno.make(link, error="m").svg_inline(
                scale=5, border=2, title=_("QR code: scan it to open the portal with the code filled in")
            ),
        )
    return letter


def _with_lang(url: str, lang: str) -> str:
    return f"{url}?lang={lang}"


urlpatterns = [
    path("", letters_home, name="staff_letters"),
    path("courses/sync/", courses_sync_view, name="staff_courses_sync"),
    path("students/<int:pk>/", letters_student, name="staff_letters_student"),
    path("students/<int:pk>/status/", letters_student_status, name="staff_letters_student_status"),
    path("students/<int:pk>/code/", code_new, name="staff_code_new"),
    path("courses/<int:pk>/", letters_course, name="staff_letters_course"),
    path("courses/<int:pk>/status/", letters_course_status, name="staff_letters_course_status"),
]
