"""Staff accounts and the school's link policy, as a staff admin (or ``manage.py create_staff``) sets them.

Two roles, each a group made by migration 0004: "School staff" review requests, revoke links and hold
pairs; "Staff admin" also set the link policy and manage staff. Staff sign in by an emailed code (or
set a password through "forgot password") and then need an authenticator app for every staff page.
"""

from __future__ import annotations

from dataclasses import dataclass

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group, Permission
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.validators import validate_email
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse

from linking.audit.services import audit_event_record
from linking.models import LinkPolicy

STAFF_GROUP = "School staff"
ADMIN_GROUP = "Staff admin"
STAFF_GROUPS = (STAFF_GROUP, ADMIN_GROUP)
GROUP_PERMISSIONS = {
    STAFF_GROUP: ("review_link_requests",),
    ADMIN_GROUP: ("review_link_requests", "manage_staff"),
}

POLICY_FIELDS = ("mode", "max_observers", "watched_domains", "hold_flagged_students", "retention_days")


def staff_group(name: str) -> Group:
    """The staff group, made again with its permissions if it went missing (a restored database)."""
    group, created = Group.objects.get_or_create(name=name)
    if created:
        group.permissions.set(
            Permission.objects.filter(content_type__app_label="linking", codename__in=GROUP_PERMISSIONS[name])
        )
    return group


class StaffError(Exception):
    """A staff change that cannot be made; the message says why, for the page or the command."""


@dataclass(frozen=True)
class StaffMember:
    user: AbstractBaseUser
    created: bool
    previous_role: str  # "", "staff" or "admin"
    role: str


def staff_role(user: AbstractBaseUser) -> str:
    """ "admin", "staff" or "" by the user's groups (not by superuser status)."""
    names = {group.name for group in user.groups.all()}
    if ADMIN_GROUP in names:
        return "admin"
    return "staff" if STAFF_GROUP in names else ""


def staff_members():
    """Every user in a staff group, with their groups, by email."""
    return (
        get_user_model()
        .objects.filter(groups__name__in=STAFF_GROUPS)
        .distinct()
        .prefetch_related("groups")
        .order_by("email")
    )


@transaction.atomic
def staff_member_create(*, email: str, name: str = "", admin: bool = False, by: AbstractBaseUser | None) -> StaffMember:
    """Make ``email`` school staff (or a staff admin), creating the account if there is none.

    A new account's username is the email, its address verified and primary, its password unusable:
    they sign in by an emailed code. An existing account keeps its password; its role becomes the one
    given (so this also demotes an admin). Running it twice changes nothing the second time. The email
    telling them how to sign in is sent once the transaction commits. Raises :class:`StaffError`.
    """
    email = _clean_email(email)
    name = name.strip()
    User = get_user_model()
    address = EmailAddress.objects.select_related("user").filter(email__iexact=email).first()
    user = address.user if address else User.objects.filter(email__iexact=email).first()
    if user is None:
        user = User.objects.filter(username__iexact=email).first()
    created = user is None
    if created:
        user = User(username=email, email=email)
        user.set_unusable_password()
    if name:
        # One name field, as the rest of the portal has: Django's first/last split fits few names.
        user.first_name, user.last_name = name[:150], ""
    if not user.email:
        user.email = email
    user.save()
    _verify_address(user, email, address)

    previous_role = "" if created else staff_role(user)
    role = "admin" if admin else "staff"
    user.groups.remove(*Group.objects.filter(name__in=STAFF_GROUPS))
    user.groups.add(staff_group(ADMIN_GROUP if admin else STAFF_GROUP))
    if created or previous_role != role:
        audit_event_record(
            action="staff_member.created" if not previous_role else "staff_member.role_changed",
            actor=by,
            actor_label="staff" if by is not None else "system",
            subject={"user": user.pk},
            data={"role": role, "previous_role": previous_role, "new_account": created},
            personal={"email": email, "name": name},
        )
        if not previous_role:
            transaction.on_commit(lambda: staff_invite_send(user=user))
    return StaffMember(user=user, created=created, previous_role=previous_role, role=role)


@transaction.atomic
def staff_member_remove(*, user: AbstractBaseUser, by: AbstractBaseUser) -> None:
    """Take ``user`` out of both staff roles; their account stays (a parent may also be staff)."""
    if user.pk == by.pk:
        raise StaffError("You cannot remove yourself from staff. Ask another staff admin.")
    previous_role = staff_role(user)
    if not previous_role:
        return
    user.groups.remove(*Group.objects.filter(name__in=STAFF_GROUPS))
    audit_event_record(
        action="staff_member.removed",
        actor=by,
        actor_label="staff",
        subject={"user": user.pk},
        data={"previous_role": previous_role},
    )


def staff_invite_send(*, user: AbstractBaseUser) -> None:
    """Tell a new staff member how to sign in and that an authenticator app comes next."""
    context = {
        "name": user.first_name,
        "email": user.email,
        "portal_url": settings.PORTAL_BASE_URL,
        "login_code_url": settings.PORTAL_BASE_URL + reverse("account_request_login_code"),
        "password_reset_url": settings.PORTAL_BASE_URL + reverse("account_reset_password"),
        "staff_url": settings.PORTAL_BASE_URL + reverse("staff_home"),
    }
    message = EmailMultiAlternatives(
        subject=render_to_string("staff/accounts/email/staff_invite_subject.txt", context).strip(),
        body=render_to_string("staff/accounts/email/staff_invite_message.txt", context),
        to=[user.email],
    )
    message.attach_alternative(render_to_string("staff/accounts/email/staff_invite_message.html", context), "text/html")
    message.send()


@transaction.atomic
def link_policy_update(*, by: AbstractBaseUser, **fields) -> LinkPolicy:
    """Set the school's link policy; records what changed, from what to what."""
    unknown = set(fields) - set(POLICY_FIELDS)
    if unknown:
        raise TypeError(f"link_policy_update() got unknown fields: {sorted(unknown)}")
    LinkPolicy.current()  # the row exists before it is locked
    policy = LinkPolicy.objects.select_for_update().get(pk=1)
    changes = {}
    for field, value in fields.items():
        if getattr(policy, field) != value:
            changes[field] = {"from": getattr(policy, field), "to": value}
            setattr(policy, field, value)
    if not changes:
        return policy
    policy.updated_by = by
    policy.save(update_fields=[*changes, "updated_by", "updated_at"])
    audit_event_record(
        action="link_policy.updated",
        actor=by,
        actor_label="staff",
        subject={"link_policy": policy.pk},
        data={"changes": changes},
    )
    return policy


def _clean_email(email: str) -> str:
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise StaffError(f"{email!r} is not an email address.") from None
    return email


def _verify_address(user: AbstractBaseUser, email: str, address: EmailAddress | None) -> None:
    """``address`` is the user's own EmailAddress for ``email``, or None when there is none yet."""
    if address is None:
        address = EmailAddress(user=user, email=email)
    # The staff admin (or the server's operator) vouches for the address; the first sign-in code proves it.
    address.verified = True
    if not EmailAddress.objects.filter(user=user, primary=True).exclude(pk=address.pk).exists():
        address.primary = True
    address.save()
