"""Limits on guessing pairing codes.

A Canvas pairing code is six letters and digits (62^6, about 5.7e10 codes) and lives seven days, so
guessing one is hopeless only if guesses are few. Three limits keep them few:

- **A parent account** may have at most ``CODE_GUESSES_PER_ACCOUNT`` codes in play within an hour:
  waiting, linking, held or wrong. Codes count when they are entered, before Canvas has judged them,
  so a burst cannot outrun the worker. When that many turn out wrong, the worker pauses the
  account's code entry for ``CODE_LOCKOUT_HOURS``.
- **A network address** likewise, across every account entering codes from it
  (``CODE_GUESSES_PER_ADDRESS``), for an attacker with many accounts and few addresses.
- **Everyone:** ``CODE_GUESSES_GLOBAL`` wrong codes in an hour, portal-wide, pause *redemption* for an
  hour. Entry goes on and codes wait, saved: an attacker who spends the budget delays families but
  cannot lock them out, and gets no more guesses.

Each pause is recorded with an audit event in the transaction that records the wrong code, and staff
admins are emailed; staff can lift a pause in the console. docs/reliability.md states the bound.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import Max, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from linking.audit.services import audit_event_record
from linking.models import CodeEntryLockout, LinkRequest, Parent

logger = logging.getLogger(__name__)

WINDOW = timedelta(hours=1)
# The first key of the advisory locks that serialise code entry from one address (any constant of our own).
ADDRESS_LOCK = 0x636F6465
# A request's network address is kept this long, for staff looking into a pause; the limits need an hour.
ADDRESSES_KEPT = timedelta(days=7)
Scope = CodeEntryLockout.Scope


@dataclass
class CodeEntryRefused(Exception):
    """This parent or address may not enter more codes now.

    ``until`` is the end of a pause; None means the codes entered would pass the hour's limit, and
    ``remaining`` says how many more may be tried this hour.
    """

    until: datetime | None
    remaining: int = 0


def _in_play() -> Q:
    waiting = Q(state__in=LinkRequest.OPEN_STATES)
    wrong = Q(state=LinkRequest.State.FAILED, failure=LinkRequest.Failure.INVALID_CODE)
    return waiting | wrong


def _counted_since(now: datetime, **lockout_key) -> datetime:
    # A pause staff lifted forgives what led to it: counting starts again from the lift.
    lifted = CodeEntryLockout.objects.filter(lifted_at__isnull=False, **lockout_key).aggregate(last=Max("lifted_at"))
    return max(filter(None, [now - WINDOW, lifted["last"]]))


def code_entry_check(*, parent: Parent, address: str | None, count: int) -> None:
    """Raise :class:`CodeEntryRefused` unless ``parent``, from ``address``, may enter ``count`` more codes.

    Call it inside a transaction with the parent's row locked (``link_requests_submit`` does), so that
    two submissions of the same parent cannot both pass the check.
    """
    if address and connection.vendor == "postgresql":
        # The parent's row lock serialises one account; this serialises one address, so that accounts
        # entering codes from it at the same instant cannot each pass its check. Held until commit.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [ADDRESS_LOCK, address])
    now = timezone.now()
    pauses = Q(scope=Scope.ACCOUNT, parent=parent)
    if address:
        pauses |= Q(scope=Scope.ADDRESS, address=address)
    paused = CodeEntryLockout.objects.active(now).filter(pauses)
    until = paused.aggregate(until=Max("until"))["until"]
    if until is not None:
        raise CodeEntryRefused(until=until)
    in_play = LinkRequest.objects.filter(_in_play())
    since = _counted_since(now, scope=Scope.ACCOUNT, parent=parent)
    remaining = settings.CODE_GUESSES_PER_ACCOUNT - in_play.filter(parent=parent, created_at__gte=since).count()
    if address:
        since = _counted_since(now, scope=Scope.ADDRESS, address=address)
        used = in_play.filter(client_ip=address, created_at__gte=since).count()
        remaining = min(remaining, settings.CODE_GUESSES_PER_ADDRESS - used)
    if count > remaining:
        raise CodeEntryRefused(until=None, remaining=max(0, remaining))


def redemption_paused_until() -> datetime | None:
    """The end of a portal-wide pause on redeeming codes, or None."""
    return CodeEntryLockout.objects.active().filter(scope=Scope.EVERYONE).aggregate(until=Max("until"))["until"]


def code_failure_record(*, link_request: LinkRequest) -> None:
    """After a wrong code is recorded, in the same transaction: pause entry wherever a limit is reached."""
    now = timezone.now()
    wrong = LinkRequest.objects.filter(failure=LinkRequest.Failure.INVALID_CODE)
    parent = link_request.parent
    since = _counted_since(now, scope=Scope.ACCOUNT, parent=parent)
    failures = wrong.filter(parent=parent, finished_at__gte=since).count()
    if failures >= settings.CODE_GUESSES_PER_ACCOUNT:
        _lockout_start(scope=Scope.ACCOUNT, parent=parent, failures=failures, now=now)
    if link_request.client_ip:
        address = link_request.client_ip
        since = _counted_since(now, scope=Scope.ADDRESS, address=address)
        failures = wrong.filter(client_ip=address, finished_at__gte=since).count()
        if failures >= settings.CODE_GUESSES_PER_ADDRESS:
            _lockout_start(scope=Scope.ADDRESS, address=address, failures=failures, now=now)
    since = _counted_since(now, scope=Scope.EVERYONE)
    failures = wrong.filter(finished_at__gte=since).count()
    if failures >= settings.CODE_GUESSES_GLOBAL:
        _lockout_start(scope=Scope.EVERYONE, failures=failures, now=now)


def _lockout_start(*, scope: str, failures: int, now: datetime, parent: Parent | None = None, address=None) -> None:
    if CodeEntryLockout.objects.active(now).filter(scope=scope, parent=parent, address=address).exists():
        return
    pause = WINDOW if scope == Scope.EVERYONE else timedelta(hours=settings.CODE_LOCKOUT_HOURS)
    lockout = CodeEntryLockout.objects.create(
        scope=scope, parent=parent, address=address, failures=failures, started_at=now, until=now + pause
    )
    subject = {"code_entry_lockout": str(lockout.pk)}
    if parent is not None:
        subject["parent"] = parent.pk
    audit_event_record(
        action="code_entry.locked",
        actor_label="system",
        subject=subject,
        outcome=scope,
        data={"failures": failures, "until": lockout.until.isoformat()},
        personal={"address": address} if address else None,
    )
    logger.warning("code entry paused (%s) after %d wrong codes, until %s", scope, failures, lockout.until)
    # An email that cannot be sent must not undo the pause, nor fail the task that recorded it.
    transaction.on_commit(lambda: _alert_staff(lockout), robust=True)


def _alert_staff(lockout: CodeEntryLockout) -> None:
    admins = (
        get_user_model()
        .objects.with_perm("linking.manage_staff", backend="django.contrib.auth.backends.ModelBackend")
        .filter(is_active=True)
        .exclude(email="")
    )
    recipients = sorted({admin.email for admin in admins})
    if not recipients:
        logger.warning("code entry paused, and there is no staff admin with an email address to tell")
        return
    context = {
        "lockout": lockout,
        "lockout_hours": settings.CODE_LOCKOUT_HOURS,
        "console_url": settings.PORTAL_BASE_URL + reverse("staff_lockouts"),
    }
    send_mail(
        subject=render_to_string("staff/email/lockout_alert_subject.txt", context).strip(),
        message=render_to_string("staff/email/lockout_alert_message.txt", context),
        from_email=None,
        recipient_list=recipients,
    )


@transaction.atomic
def code_entry_lockout_lift(*, lockout: CodeEntryLockout, by: AbstractBaseUser) -> None:
    """End a pause now; what led to it is forgiven (counting starts again from here)."""
    changed = CodeEntryLockout.objects.active().filter(pk=lockout.pk).update(lifted_at=timezone.now(), lifted_by=by)
    if not changed:
        raise ValueError("This pause has already ended.")
    subject = {"code_entry_lockout": str(lockout.pk)}
    if lockout.parent_id:
        subject["parent"] = lockout.parent_id
    audit_event_record(
        action="code_entry.unlocked", actor=by, actor_label="staff", subject=subject, outcome=lockout.scope
    )


def client_addresses_forget(*, now: datetime | None = None) -> int:
    """Blank the network address of link requests older than ``ADDRESSES_KEPT``; returns how many."""
    cutoff = (now or timezone.now()) - ADDRESSES_KEPT
    return LinkRequest.objects.filter(client_ip__isnull=False, created_at__lt=cutoff).update(client_ip=None)
