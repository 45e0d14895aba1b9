"""Staff console: the overview, the link policy and staff accounts (mounted at /staff/).

The overview is for all staff; the policy and the staff list are for staff admins. Every page here
also needs the second factor, which ``linking.staff.middleware.StaffMfaMiddleware`` checks first.
"""

from __future__ import annotations

from datetime import timedelta

from allauth.mfa.models import Authenticator
from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Exists, OuterRef, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from linking.models import CodeEntryLockout, LinkPolicy, LinkRequest, PairHold
from linking.services.staff import (
    StaffError,
    link_policy_update,
    staff_member_create,
    staff_member_remove,
    staff_members,
)
from linking.staff.access import staff_admin_required, staff_required

FAILED_WINDOW = timedelta(days=7)


# -- forms ----------------------------------------------------------------------------------------
class LinkPolicyForm(forms.ModelForm):
    class Meta:
        model = LinkPolicy
        fields = ["mode", "max_observers", "watched_domains", "hold_flagged_students", "retention_days"]
        widgets = {
            "mode": forms.RadioSelect,
            "watched_domains": forms.Textarea(attrs={"rows": 4, "autocapitalize": "off", "spellcheck": "false"}),
        }
        labels = {
            "mode": gettext_lazy("When a parent enters a code"),
            "max_observers": gettext_lazy("Most linked parents per student"),
            "watched_domains": gettext_lazy("Watched email domains"),
            "hold_flagged_students": gettext_lazy("Hold requests for flagged students"),
            "retention_days": gettext_lazy("Keep personal data in the audit log for (days)"),
        }
        help_texts = {
            "retention_days": gettext_lazy("Leave empty to keep it until you set a limit."),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["max_observers"].min_value = 1
        self.fields["max_observers"].widget.attrs["min"] = 1
        self.fields["retention_days"].min_value = 1
        self.fields["retention_days"].widget.attrs["min"] = 1

    def clean_watched_domains(self) -> str:
        domains = []
        for line in self.cleaned_data["watched_domains"].splitlines():
            domain = line.strip().lower().lstrip("@")
            if not domain:
                continue
            if "." not in domain or any(not part or not part.replace("-", "").isalnum() for part in domain.split(".")):
                raise ValidationError(_("%(domain)s is not an email domain such as example.com.") % {"domain": domain})
            if domain not in domains:
                domains.append(domain)
        return "\n".join(domains)

    def clean(self):
        cleaned = super().clean()
        no_rule = not (
            cleaned.get("max_observers") or cleaned.get("watched_domains") or cleaned.get("hold_flagged_students")
        )
        if cleaned.get("mode") == LinkPolicy.Mode.RULES and no_rule and not self.errors:
            raise ValidationError(_("Choose at least one rule, or another way of handling requests."))
        return cleaned


class StaffMemberForm(forms.Form):
    email = forms.EmailField(
        label=gettext_lazy("Email address"), widget=forms.EmailInput(attrs={"autocomplete": "off"})
    )
    name = forms.CharField(label=gettext_lazy("Full name"), max_length=150)
    role = forms.ChoiceField(
        label=gettext_lazy("Role"),
        choices=[
            ("staff", gettext_lazy("School staff: review requests, holds, reconciliation, the audit log")),
            ("admin", gettext_lazy("Staff admin: all of that, plus the link policy and staff accounts")),
        ],
        initial="staff",
        widget=forms.RadioSelect,
    )


# -- views ----------------------------------------------------------------------------------------
@require_GET
@staff_required
def staff_home(request: HttpRequest) -> HttpResponse:
    week_ago = timezone.now() - FAILED_WINDOW
    counts = LinkRequest.objects.aggregate(
        held=Count("pk", filter=Q(state=LinkRequest.State.HELD)),
        failed_this_week=Count("pk", filter=Q(state=LinkRequest.State.FAILED, finished_at__gte=week_ago)),
        in_progress=Count("pk", filter=Q(state__in=[LinkRequest.State.WAITING, LinkRequest.State.LINKING])),
    )
    by_state = dict(LinkRequest.objects.order_by().values_list("state").annotate(count=Count("pk")))
    context = {
        "counts": counts,
        "active_holds": PairHold.objects.filter(lifted_at__isnull=True).count(),
        "active_pauses": CodeEntryLockout.objects.active().count(),
        "states": [(label, by_state.get(value, 0)) for value, label in LinkRequest.State.choices],
        "policy": LinkPolicy.current(),
    }
    return render(request, "staff/accounts/home.html", context)


@require_http_methods(["GET", "POST"])
@staff_admin_required
def staff_policy(request: HttpRequest) -> HttpResponse:
    form = LinkPolicyForm(request.POST or None, instance=LinkPolicy.current())
    if request.method == "POST":
        if not form.is_valid():
            return render(request, "staff/accounts/policy.html", {"form": form}, status=400)
        link_policy_update(by=request.user, **form.cleaned_data)
        messages.success(request, _("The link policy is saved. It applies to requests from now on."))
        return redirect("staff_policy")
    return render(request, "staff/accounts/policy.html", {"form": form})


@require_GET
@staff_admin_required
def staff_accounts(request: HttpRequest) -> HttpResponse:
    has_app = Authenticator.objects.filter(user=OuterRef("pk"), type=Authenticator.Type.TOTP)
    members = staff_members().annotate(has_authenticator=Exists(has_app))
    return render(request, "staff/accounts/people.html", {"members": members})


@require_http_methods(["GET", "POST"])
@staff_admin_required
def staff_account_new(request: HttpRequest) -> HttpResponse:
    form = StaffMemberForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            try:
                member = staff_member_create(
                    email=form.cleaned_data["email"],
                    name=form.cleaned_data["name"],
                    admin=form.cleaned_data["role"] == "admin",
                    by=request.user,
                )
            except StaffError as exc:
                form.add_error("email", str(exc))
            else:
                messages.success(request, _("%(email)s is now staff.") % {"email": member.user.email})
                return redirect("staff_accounts")
        return render(request, "staff/accounts/person_new.html", {"form": form}, status=400)
    return render(request, "staff/accounts/person_new.html", {"form": form})


@require_POST
@staff_admin_required
def staff_account_remove(request: HttpRequest, pk: int) -> HttpResponse:
    member = get_object_or_404(staff_members(), pk=pk)
    try:
        staff_member_remove(user=member, by=request.user)
    except StaffError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("%(email)s is no longer staff.") % {"email": member.email})
    return redirect("staff_accounts")


urlpatterns = [
    path("", staff_home, name="staff_home"),
    path("policy/", staff_policy, name="staff_policy"),
    path("people/", staff_accounts, name="staff_accounts"),
    path("people/new/", staff_account_new, name="staff_account_new"),
    path("people/<int:pk>/remove/", staff_account_remove, name="staff_account_remove"),
]
