"""Staff console: pauses on entering pairing codes (linking.services.guessing), and lifting one."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from linking.models import CodeEntryLockout
from linking.services.guessing import code_entry_lockout_lift
from linking.staff.access import staff_required

ENDED_SHOWN = 50


@require_GET
@staff_required
def lockout_list(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    lockouts = CodeEntryLockout.objects.select_related("parent__user", "lifted_by")
    context = {
        "active": lockouts.active(now).order_by("until"),
        "ended": lockouts.ended(now)[:ENDED_SHOWN],
        "ended_shown": ENDED_SHOWN,
    }
    return render(request, "staff/review/lockout_list.html", context)


@require_POST
@staff_required
def lockout_lift(request: HttpRequest, pk) -> HttpResponse:
    lockout = get_object_or_404(CodeEntryLockout, pk=pk)
    try:
        code_entry_lockout_lift(lockout=lockout, by=request.user)
    except ValueError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, _("Lifted the pause: codes can be entered again."))
    return redirect("staff_lockouts")


urlpatterns = [
    path("", lockout_list, name="staff_lockouts"),
    path("<uuid:pk>/lift/", lockout_lift, name="staff_lockout_lift"),
]
