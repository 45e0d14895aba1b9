"""Link requests and observation links: what a parent asks for, and what the worker does in Canvas.

Web side: ``link_requests_submit`` and ``observation_link_remove_request`` save rows (the outbox) and
queue work on commit. Worker side: ``link_request_redeem`` and ``observation_link_unlink`` make the
Canvas calls and record the outcome with its audit event in one transaction.

Pairing codes are single use and Canvas spends them before anything else, so a redeem whose answer
was lost (a timeout, a crash after Canvas answered) is never simply repeated: the next attempt first
looks at the parent's observees in Canvas and adopts what the lost call made.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from linking.audit.services import audit_event_record
from linking.canvas import (
    CanvasAmbiguousMatch,
    CanvasClient,
    CanvasInvalidPairingCode,
    CanvasLoginTaken,
    CanvasNoLinkCreated,
    CanvasNotAuthorized,
    CanvasThrottled,
    CanvasTransient,
    admin_client,
    record_canvas_calls,
)
from linking.models import LinkPolicy, LinkRequest, ObservationLink, Parent
from linking.services import guessing
from linking.services import policy as policy_rules
from linking.services.people import student_upsert_from_canvas

logger = logging.getLogger(__name__)

# Outages and throttling are retried for this long; a code lives 7 days, a parent's patience less.
GIVE_UP_AFTER = timedelta(hours=24)


class RetryLater(Exception):
    """Canvas could not be reached or asked us to slow down; the task retries with backoff."""


# -- web side -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Submitted:
    created: list[LinkRequest]
    already_open: list[LinkRequest]


@transaction.atomic
def link_requests_submit(
    *, parent: Parent, codes: list[str], source: str = LinkRequest.Source.TYPED, address: str | None = None
) -> Submitted:
    """Save one LinkRequest per code and queue each once the transaction commits.

    ``codes`` are already cleaned (trimmed, case kept, deduplicated) by the form. A code this parent
    already has an open request for is not submitted twice. ``address`` is the client's network
    address; raises :class:`~linking.services.guessing.CodeEntryRefused` past the guessing limits,
    having saved nothing.
    """
    from linking.tasks import link_request_process

    Parent.objects.select_for_update().filter(pk=parent.pk).first()
    open_requests = {
        request.code: request
        for request in LinkRequest.objects.filter(parent=parent, state__in=LinkRequest.OPEN_STATES, code__in=codes)
    }
    guessing.code_entry_check(
        parent=parent, address=address, count=len([code for code in codes if code not in open_requests])
    )
    policy = LinkPolicy.current()
    created, already_open = [], []
    for code in codes:
        if code in open_requests:
            already_open.append(open_requests[code])
            continue
        student = policy_rules.student_for_code(code)
        request = LinkRequest.objects.create(
            parent=parent, code=code, source=source, student=student, client_ip=address
        )
        subject = {"link_request": str(request.id), "parent": parent.pk, "student": student.pk if student else None}
        audit_event_record(
            action="link_request.submitted",
            actor=parent.user,
            actor_label="parent",
            subject={key: value for key, value in subject.items() if value is not None},
            data={"source": source},
        )
        created.append(request)
        if student is not None and policy_rules.is_blocked(parent=parent, student=student):
            # Known before redeeming: the code stays unspent, and no link is made even for a moment.
            _fail(request, LinkRequest.Failure.BLOCKED, [])
            continue
        rule = policy_rules.rule_before_redeem(parent=parent, student=student, policy=policy)
        if rule:
            _hold(request, rule, [])
            continue
        link_request_process.delay_on_commit(str(request.id))
    return Submitted(created=created, already_open=already_open)


@transaction.atomic
def observation_link_remove_request(*, link: ObservationLink, by: AbstractBaseUser, actor_label: str) -> None:
    """Mark the link for removal (the row is the outbox) and queue the Canvas unlink."""
    from linking.tasks import observation_link_unlink as unlink_task

    changed = ObservationLink.objects.filter(pk=link.pk, state=ObservationLink.State.ACTIVE).update(
        state=ObservationLink.State.REMOVING, removed_by=by, claimed_at=None, updated_at=timezone.now()
    )
    if not changed:
        return  # already being removed, or gone: asking twice changes nothing
    audit_event_record(
        action="link.remove_requested",
        actor=by,
        actor_label=actor_label,
        subject=_link_subject(link),
    )
    unlink_task.delay_on_commit(str(link.pk))


# -- worker side ----------------------------------------------------------------------------------
def link_request_redeem(*, link_request: LinkRequest, canvas: CanvasClient | None = None) -> None:
    """Redeem a claimed request's code in Canvas for its parent, and record what happened.

    Raises :class:`RetryLater` for outages and throttling (the caller releases the claim and retries).
    Every other outcome ends the request, linked or failed, with its audit event.
    """
    paused_until = guessing.redemption_paused_until()
    if paused_until is not None:
        raise RetryLater(f"redeeming codes is paused until {paused_until:%H:%M} (too many wrong codes portal-wide)")
    canvas = canvas or admin_client()
    with record_canvas_calls() as calls:
        try:
            students, observer_id = _redeem(canvas, link_request)
        except CanvasInvalidPairingCode:
            return _fail(link_request, LinkRequest.Failure.INVALID_CODE, calls)
        except CanvasNoLinkCreated:
            return _fail(link_request, LinkRequest.Failure.NO_LINK, calls)
        except CanvasAmbiguousMatch:
            return _fail(link_request, LinkRequest.Failure.AMBIGUOUS_ACCOUNT, calls)
        except CanvasNotAuthorized:
            return _fail(link_request, LinkRequest.Failure.NOT_AUTHORIZED, calls)
        except (CanvasTransient, CanvasThrottled) as exc:
            if timezone.now() - link_request.created_at > GIVE_UP_AFTER:
                return _fail(link_request, LinkRequest.Failure.CANVAS_UNAVAILABLE, calls)
            raise RetryLater(str(exc)) from exc
        if not students:
            return _fail(link_request, LinkRequest.Failure.UNCERTAIN, calls)
        verdict = _check_after_redeem(canvas, link_request, students, observer_id)
        if verdict:
            return verdict(calls)
        _record_linked(link_request, students, observer_id, calls)


def _check_after_redeem(canvas: CanvasClient, link_request: LinkRequest, students: list[dict], observer_id: int):
    """Apply holds and student rules now that Canvas has named the student; undo the link if one fires.

    Returns a function recording the outcome, or None to record the link. Holds apply even to approved
    requests; the policy's rules only to requests no one has approved.
    """
    parent = link_request.parent
    policy = LinkPolicy.current()
    for canvas_student in students:
        student = student_upsert_from_canvas(canvas_user_id=canvas_student["id"], name=canvas_student["name"])
        blocked = policy_rules.is_blocked(parent=parent, student=student)
        rule = (
            ""
            if blocked or link_request.reviewed_by_id
            else policy_rules.rule_for_student(parent=parent, student=student, policy=policy)
        )
        if blocked or rule:
            canvas.unlink(observer_id, student.canvas_user_id)
            LinkRequest.objects.filter(pk=link_request.pk).update(student=student)
            link_request.student = student
            if blocked:
                return lambda calls: _fail(link_request, LinkRequest.Failure.BLOCKED, calls)
            return lambda calls, rule=rule: _hold(link_request, rule, calls)
    return None


def _redeem(canvas: CanvasClient, link_request: LinkRequest) -> tuple[list[dict], int]:
    parent = link_request.parent
    observer_id = parent.canvas_user_id or _find_parent_in_canvas(canvas, parent)
    if link_request.reviewed_by_id and link_request.redeem_started_at and link_request.student_id and observer_id:
        # Approved after a rule held it: the code is spent and the student known, so the admin link
        # (idempotent) makes what the code would have.
        return [canvas.link(observer_id, link_request.student.canvas_user_id)], observer_id
    if link_request.redeem_started_at is not None and observer_id is not None:
        # An earlier attempt may have spent the code: adopt what it made rather than redeem again.
        adopted = _observees_the_portal_does_not_know(canvas, parent, observer_id)
        if adopted:
            return adopted, observer_id
    _mark_redeem_started(link_request)
    if observer_id is None:
        try:
            observer = canvas.create_observer(
                name=parent.name, email=parent.email, pairing_code=link_request.code, locale=parent.locale or None
            )
        except CanvasLoginTaken:
            # Someone made the account since we looked (the parent, or a school import): use it.
            observer_id = _find_parent_in_canvas(canvas, parent)
            if observer_id is None:
                raise
        else:
            _remember_observer(parent, observer["id"])
            # A new account's only observee is the code's student: the create call linked them.
            return canvas.list_observees(observer["id"]), observer["id"]
    student = canvas.link_with_pairing_code(observer_id, link_request.code)
    return [student], observer_id


def _find_parent_in_canvas(canvas: CanvasClient, parent: Parent) -> int | None:
    user = canvas.find_user_by_email(parent.email)
    if user is None:
        return None
    _remember_observer(parent, user["id"])
    return user["id"]


def _remember_observer(parent: Parent, canvas_user_id: int) -> None:
    Parent.objects.filter(pk=parent.pk).update(canvas_user_id=canvas_user_id)
    parent.canvas_user_id = canvas_user_id


def _observees_the_portal_does_not_know(canvas: CanvasClient, parent: Parent, observer_id: int) -> list[dict]:
    known = set(
        ObservationLink.objects.current().filter(parent=parent).values_list("student__canvas_user_id", flat=True)
    )
    return [student for student in canvas.list_observees(observer_id) if student["id"] not in known]


def _mark_redeem_started(link_request: LinkRequest) -> None:
    # Committed on its own before the call: the evidence must survive the crash it is there for.
    now = timezone.now()
    LinkRequest.objects.filter(pk=link_request.pk).update(redeem_started_at=now, updated_at=now)
    link_request.redeem_started_at = now


@transaction.atomic
def _record_linked(link_request: LinkRequest, students: list[dict], observer_id: int, calls: list[dict]) -> None:
    parent = link_request.parent
    first_student = None
    for canvas_student in students:
        student = student_upsert_from_canvas(canvas_user_id=canvas_student["id"], name=canvas_student["name"])
        first_student = first_student or student
        root_ids = canvas_student.get("observation_link_root_account_ids") or []
        created_roots = []
        for root_account_id in root_ids:
            _, created = ObservationLink.objects.get_or_create(
                parent=parent,
                student=student,
                root_account_id=root_account_id,
                state__in=ObservationLink.CURRENT_STATES,
                defaults={
                    "method": ObservationLink.Method.PAIRING_CODE,
                    "link_request": link_request,
                    "created_by": parent.user,
                    "state": ObservationLink.State.ACTIVE,
                },
            )
            if created:
                created_roots.append(root_account_id)
        audit_event_record(
            action="link.created" if created_roots else "link.confirmed",
            actor=parent.user,
            actor_label="parent",
            subject={
                "link_request": str(link_request.pk),
                "parent": parent.pk,
                "student": student.pk,
                "canvas_observer": observer_id,
                "canvas_student": canvas_student["id"],
            },
            canvas_calls=calls,
            outcome="linked",
            data={
                "method": ObservationLink.Method.PAIRING_CODE,
                "source": link_request.source,
                "root_account_ids": root_ids,
                "new_root_account_ids": created_roots,
            },
        )
    now = timezone.now()
    link_request.state = LinkRequest.State.LINKED
    link_request.student = first_student
    link_request.failure = ""
    link_request.code = ""  # spent: nothing left to keep secret
    link_request.finished_at = now
    link_request.save(update_fields=["state", "student", "failure", "code", "finished_at", "updated_at"])


@transaction.atomic
def _fail(link_request: LinkRequest, failure: str, calls: list[dict]) -> None:
    link_request.state = LinkRequest.State.FAILED
    link_request.failure = failure
    if failure not in LinkRequest.RETRYABLE_FAILURES:
        link_request.code = ""  # spent or worthless: nothing left to keep secret
    link_request.finished_at = timezone.now()
    link_request.save(update_fields=["state", "failure", "code", "finished_at", "updated_at"])
    audit_event_record(
        action="link_request.failed",
        actor=link_request.parent.user,
        actor_label="parent",
        subject=link_request_subject(link_request),
        canvas_calls=calls,
        outcome=failure,
    )
    if failure == LinkRequest.Failure.INVALID_CODE:
        guessing.code_failure_record(link_request=link_request)


@transaction.atomic
def _hold(link_request: LinkRequest, rule: str, calls: list[dict]) -> None:
    link_request.state = LinkRequest.State.HELD
    link_request.held_rule = rule
    link_request.save(update_fields=["state", "held_rule", "updated_at"])
    audit_event_record(
        action="link_request.held",
        actor=link_request.parent.user,
        actor_label="parent",
        subject=link_request_subject(link_request),
        canvas_calls=calls,
        outcome=rule,
    )


def link_request_subject(link_request: LinkRequest) -> dict:
    subject = {
        "link_request": str(link_request.pk),
        "parent": link_request.parent_id,
        "student": link_request.student_id,
    }
    return {key: value for key, value in subject.items() if value is not None}


def observation_link_unlink(*, link: ObservationLink, canvas: CanvasClient | None = None) -> None:
    """Remove a link in Canvas (idempotent: no link there counts as removed) and record it.

    Raises :class:`RetryLater` for outages and throttling.
    """
    canvas = canvas or admin_client()
    parent, student = link.parent, link.student
    with record_canvas_calls() as calls:
        try:
            # Without the parent's Canvas id there is nothing of theirs in Canvas to remove.
            removed = parent.canvas_user_id is not None and canvas.unlink(parent.canvas_user_id, student.canvas_user_id)
        except (CanvasTransient, CanvasThrottled) as exc:
            raise RetryLater(str(exc)) from exc
        with transaction.atomic():
            now = timezone.now()
            # Canvas removed every link between the two that the portal's admin manages.
            ObservationLink.objects.filter(
                parent=parent, student=student, state__in=ObservationLink.CURRENT_STATES
            ).update(state=ObservationLink.State.REMOVED, removed_at=now, updated_at=now)
            audit_event_record(
                action="link.removed",
                actor=link.removed_by,
                actor_label="parent" if link.removed_by_id == parent.user_id else "staff",
                subject=_link_subject(link),
                canvas_calls=calls,
                outcome="removed" if removed else "already_gone",
            )


def _link_subject(link: ObservationLink) -> dict:
    subject = {
        "observation_link": str(link.pk),
        "parent": link.parent_id,
        "student": link.student_id,
        "canvas_observer": link.parent.canvas_user_id,
        "canvas_student": link.student.canvas_user_id,
    }
    return {key: value for key, value in subject.items() if value is not None}
