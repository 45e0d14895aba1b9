"""Reconciliation with Canvas: compare the portal's links with what Canvas has, and resolve the drift.

Web side: ``reconciliation_request`` saves a queued run (the outbox) and queues its task; staff resolve
drift with ``drift_adopt`` and ``drift_mark_removed`` (database only) or ``drift_relink`` (queues the
admin PUT). Worker side: ``reconciliation_run`` reads Canvas and records the drift; ``drift_relink_apply``
links again in Canvas. Every change writes its audit event in the same transaction.

Canvas knows a link as (observer, student, root account); so does ObservationLink. A run lists the
observees of every parent with a Canvas id and the observers of every student, sequentially (the
client paces itself against Canvas's throttle).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from linking.audit.services import audit_event_record
from linking.canvas import (
    CanvasClient,
    CanvasError,
    CanvasNotFound,
    CanvasThrottled,
    CanvasTransient,
    admin_client,
    record_canvas_calls,
)
from linking.models import Drift, ObservationLink, PairHold, Parent, ReconciliationRun, Student
from linking.services.holds import pair_is_held
from linking.services.links import RetryLater
from linking.services.people import student_upsert_from_canvas

GONE_FROM_CANVAS = "gone from Canvas"


class DriftRefused(Exception):
    """The resolution cannot be made (held pair, unknown observer, already resolved); ``str`` says why."""


# -- web side -------------------------------------------------------------------------------------
@transaction.atomic
def reconciliation_request(*, by: AbstractBaseUser | None) -> tuple[ReconciliationRun, bool]:
    """A queued run, queued to the worker on commit; ``by`` None is the nightly beat.

    While a run is queued or running no second one is made: returns ``(that run, False)``.
    """
    from linking.tasks import reconcile_run

    unfinished = ReconciliationRun.objects.select_for_update().filter(state__in=ReconciliationRun.UNFINISHED_STATES)
    existing = unfinished.order_by("-created_at").first()
    if existing is not None:
        return existing, False
    run = ReconciliationRun.objects.create(requested_by=by)
    audit_event_record(
        action="reconciliation.requested",
        actor=by,
        actor_label="staff" if by is not None else "system",
        subject={"reconciliation_run": str(run.pk)},
    )
    reconcile_run.delay_on_commit(str(run.pk))
    return run, True


# -- worker side: the run -------------------------------------------------------------------------
@dataclass
class _Found:
    """What one pass over Canvas found, before anything is written."""

    drift: list[Drift] = field(default_factory=list)
    parents_checked: int = 0
    students_checked: int = 0


def reconciliation_run(*, run: ReconciliationRun, canvas: CanvasClient | None = None) -> None:
    """Compare every portal link with Canvas for a claimed run and record the drift it finds.

    Drift of older runs still open is superseded, so the drift page shows only the latest truth.
    Raises :class:`RetryLater` for outages and throttling (nothing is written; the task retries);
    any other Canvas error fails the run.
    """
    canvas = canvas or admin_client()
    with record_canvas_calls() as calls:
        try:
            found = _compare(canvas, run)
        except (CanvasTransient, CanvasThrottled) as exc:
            raise RetryLater(str(exc)) from exc
        except CanvasError as exc:
            return _run_failed(run, exc, calls)
        _run_finished(run, found, calls)


def _compare(canvas: CanvasClient, run: ReconciliationRun) -> _Found:
    found = _Found()
    being_relinked = set(
        Drift.objects.filter(state=Drift.State.RELINKING).values_list("observation_link_id", flat=True)
    )
    links_by_parent: dict[int, list[ObservationLink]] = defaultdict(list)
    for link in ObservationLink.objects.current().select_related("parent", "student"):
        links_by_parent[link.parent_id].append(link)
    students = {s.canvas_user_id: s for s in Student.objects.all()}
    parents = list(Parent.objects.filter(canvas_user_id__isnull=False).order_by("pk"))
    parents_by_canvas_id = {p.canvas_user_id: p for p in parents}

    for parent in parents:
        observees = _listed(canvas.list_observees, parent.canvas_user_id)
        found.parents_checked += 1
        links = links_by_parent.pop(parent.pk, [])
        # Removing links are known too: Canvas may still have them until the unlink task runs.
        known: dict[int, set[int]] = defaultdict(set)
        for link in links:
            known[link.student.canvas_user_id].add(link.root_account_id)
        in_canvas: set[tuple[int, int]] = set()
        for observee in observees:
            roots = set(observee.get("observation_link_root_account_ids") or [])
            in_canvas |= {(observee["id"], root) for root in roots}
            if missing := roots - known[observee["id"]]:
                drift = _canvas_only(run, parent.canvas_user_id, parent.name, missing, parent=parent)
                drift.student = students.get(observee["id"])
                drift.canvas_student_id, drift.student_name = observee["id"], observee.get("name", "")
                found.drift.append(drift)
        found.drift += [
            _portal_only(run, link)
            for link in links
            if link.state == ObservationLink.State.ACTIVE
            and (link.student.canvas_user_id, link.root_account_id) not in in_canvas
            and link.pk not in being_relinked
        ]

    for canvas_student_id, student in students.items():
        observers = _listed(canvas.list_observers, canvas_student_id)
        found.students_checked += 1
        for observer in observers:
            if observer["id"] in parents_by_canvas_id:
                continue  # that parent's observees were compared above
            if roots := set(observer.get("observation_link_root_account_ids") or []):
                drift = _canvas_only(run, observer["id"], observer.get("name", ""), roots)
                drift.student, drift.canvas_student_id, drift.student_name = student, canvas_student_id, student.name
                found.drift.append(drift)

    # What is left belongs to parents whose Canvas id the portal never learned: Canvas cannot confirm it.
    found.drift += [
        _portal_only(run, link)
        for links in links_by_parent.values()
        for link in links
        if link.state == ObservationLink.State.ACTIVE
    ]
    return found


def _listed(call, canvas_user_id: int) -> list[dict]:
    try:
        return call(canvas_user_id)
    except CanvasNotFound:
        return []  # deleted in Canvas: it has no links there


def _canvas_only(run: ReconciliationRun, observer_id: int, observer_name: str, roots, *, parent=None) -> Drift:
    """An in-Canvas-only drift; the caller fills in the student."""
    return Drift(
        run=run,
        kind=Drift.Kind.IN_CANVAS_ONLY,
        parent=parent,
        canvas_observer_id=observer_id,
        observer_name=observer_name or "",
        canvas_student_id=0,
        root_account_ids=sorted(roots),
    )


def _portal_only(run: ReconciliationRun, link: ObservationLink) -> Drift:
    return Drift(
        run=run,
        kind=Drift.Kind.IN_PORTAL_ONLY,
        parent=link.parent,
        canvas_observer_id=link.parent.canvas_user_id or 0,
        observer_name=link.parent.name,
        student=link.student,
        canvas_student_id=link.student.canvas_user_id,
        student_name=link.student.name,
        observation_link=link,
        root_account_ids=[link.root_account_id],
    )


@transaction.atomic
def _run_finished(run: ReconciliationRun, found: _Found, calls: list[dict]) -> None:
    now = timezone.now()
    Drift.objects.filter(state=Drift.State.OPEN).exclude(run=run).update(state=Drift.State.SUPERSEDED, updated_at=now)
    Drift.objects.filter(run=run).delete()  # a retried run starts its findings afresh
    Drift.objects.bulk_create(found.drift)
    run.counts = {
        "parents_checked": found.parents_checked,
        "students_checked": found.students_checked,
        "missing_in_portal": sum(d.kind == Drift.Kind.IN_CANVAS_ONLY for d in found.drift),
        "missing_in_canvas": sum(d.kind == Drift.Kind.IN_PORTAL_ONLY for d in found.drift),
        "canvas_calls": len(calls),
    }
    run.state = ReconciliationRun.State.DONE
    run.finished_at = now
    run.failure = ""
    run.save(update_fields=["counts", "state", "finished_at", "failure", "updated_at"])
    audit_event_record(
        action="reconciliation.finished",
        actor=run.requested_by,
        actor_label="staff" if run.requested_by_id else "system",
        subject={"reconciliation_run": str(run.pk)},
        canvas_calls=calls,
        outcome="drift" if found.drift else "in_step",
        data=run.counts,
    )


@transaction.atomic
def _run_failed(run: ReconciliationRun, exc: CanvasError, calls: list[dict]) -> None:
    run.state = ReconciliationRun.State.FAILED
    run.finished_at = timezone.now()
    run.failure = f"Canvas refused: {type(exc).__name__} ({exc.status})"
    run.counts = {**run.counts, "canvas_calls": len(calls)}
    run.save(update_fields=["state", "finished_at", "failure", "counts", "updated_at"])
    audit_event_record(
        action="reconciliation.failed",
        actor=run.requested_by,
        actor_label="staff" if run.requested_by_id else "system",
        subject={"reconciliation_run": str(run.pk)},
        canvas_calls=calls,
        outcome="canvas_refused",
        data={"error": type(exc).__name__, "status": exc.status},
    )


# -- resolutions ----------------------------------------------------------------------------------
def _lock_open(drift: Drift, kind: str) -> Drift:
    locked = Drift.objects.select_for_update(of=("self",)).select_related("parent__user", "student").get(pk=drift.pk)
    if locked.kind != kind:
        raise DriftRefused(_("That action does not apply to this kind of drift."))
    if locked.state != Drift.State.OPEN:
        raise DriftRefused(
            _("This drift is already resolved (%(state)s).") % {"state": locked.get_state_display().lower()}
        )
    return locked


def _resolve(drift: Drift, state: str, by: AbstractBaseUser | None, *extra: str) -> None:
    drift.state = state
    drift.resolved_by = by
    drift.resolved_at = timezone.now()
    drift.save(update_fields=["state", "resolved_by", "resolved_at", *extra, "updated_at"])


def _drift_subject(drift: Drift) -> dict:
    subject = {
        "drift": str(drift.pk),
        "reconciliation_run": str(drift.run_id),
        "parent": drift.parent_id,
        "student": drift.student_id,
        "observation_link": str(drift.observation_link_id) if drift.observation_link_id else None,
        "canvas_observer": drift.canvas_observer_id or None,
        "canvas_student": drift.canvas_student_id or None,
    }
    return {key: value for key, value in subject.items() if value is not None}


def drift_adoptable_parent(drift: Drift) -> Parent | None:
    """The portal parent of an in-Canvas-only link: the one found, or one who got that Canvas id since."""
    if drift.parent_id is not None:
        return drift.parent
    return Parent.objects.select_related("user").filter(canvas_user_id=drift.canvas_observer_id).first()


@transaction.atomic
def drift_adopt(*, drift: Drift, by: AbstractBaseUser) -> list[ObservationLink]:
    """Take a link Canvas has into the portal's records (method ``adopted``); returns the links made.

    Refused when the observer is no portal parent, or when staff hold the pair (then the link should
    be removed in Canvas instead).
    """
    drift = _lock_open(drift, Drift.Kind.IN_CANVAS_ONLY)
    parent = drift_adoptable_parent(drift)
    if parent is None:
        raise DriftRefused(_("The observer has no portal account, so there is no parent to adopt this link for."))
    student = drift.student or student_upsert_from_canvas(
        canvas_user_id=drift.canvas_student_id, name=drift.student_name
    )
    if pair_is_held(student=student, parent_email=parent.email):
        raise DriftRefused(
            _("This parent and student are held apart: remove the link in Canvas instead of adopting it.")
        )
    made = []
    for root_account_id in drift.root_account_ids:
        link, created = ObservationLink.objects.get_or_create(
            parent=parent,
            student=student,
            root_account_id=root_account_id,
            state__in=ObservationLink.CURRENT_STATES,
            defaults={
                "method": ObservationLink.Method.ADOPTED,
                "created_by": by,
                "state": ObservationLink.State.ACTIVE,
            },
        )
        if created:
            made.append(link)
    drift.parent, drift.student = parent, student
    _resolve(drift, Drift.State.ADOPTED, by, "parent", "student")
    audit_event_record(
        action="link.adopted",
        actor=by,
        actor_label="staff",
        subject=_drift_subject(drift),
        data={
            "method": ObservationLink.Method.ADOPTED,
            "root_account_ids": drift.root_account_ids,
            "observation_links": [str(link.pk) for link in made],
        },
        outcome="adopted" if made else "already_linked",
    )
    return made


@transaction.atomic
def drift_mark_removed(*, drift: Drift, by: AbstractBaseUser) -> None:
    """Record that a link the portal made is gone from Canvas: the ObservationLink becomes removed."""
    drift = _lock_open(drift, Drift.Kind.IN_PORTAL_ONLY)
    now = timezone.now()
    changed = ObservationLink.objects.filter(
        pk=drift.observation_link_id, state__in=ObservationLink.CURRENT_STATES
    ).update(
        state=ObservationLink.State.REMOVED,
        removed_by=by,
        removed_at=now,
        remove_reason=GONE_FROM_CANVAS,
        updated_at=now,
    )
    _resolve(drift, Drift.State.MARKED_REMOVED, by)
    audit_event_record(
        action="link.marked_removed",
        actor=by,
        actor_label="staff",
        subject=_drift_subject(drift),
        data={"remove_reason": GONE_FROM_CANVAS, "root_account_ids": drift.root_account_ids},
        outcome="removed" if changed else "already_removed",
    )


@transaction.atomic
def drift_relink(*, drift: Drift, by: AbstractBaseUser) -> None:
    """Queue linking the pair again in Canvas (the worker's admin PUT); refused for a held pair."""
    from linking.tasks import drift_relink_process

    drift = _lock_open(drift, Drift.Kind.IN_PORTAL_ONLY)
    if drift.parent is None or drift.student is None or not drift.canvas_observer_id:
        raise DriftRefused(_("The parent has no Canvas account to link again."))
    if pair_is_held(student=drift.student, parent_email=drift.parent.email):
        raise DriftRefused(_("This parent and student are held apart: the link cannot be made again."))
    drift.failure = ""
    drift.claimed_at = None
    _resolve(drift, Drift.State.RELINKING, by, "failure", "claimed_at")
    audit_event_record(action="link.relink_requested", actor=by, actor_label="staff", subject=_drift_subject(drift))
    drift_relink_process.delay_on_commit(str(drift.pk))


def drift_relink_apply(*, drift: Drift, canvas: CanvasClient | None = None) -> None:
    """Link a claimed relinking pair again in Canvas (``PUT``, idempotent) and record the outcome.

    A hold placed since staff asked, or Canvas refusing, sends the drift back to open with the reason.
    Raises :class:`RetryLater` for outages and throttling.
    """
    canvas = canvas or admin_client()
    if pair_is_held(student=drift.student, parent_email=drift.parent.email):
        return _relink_refused(drift, "held", "A hold was placed on this pair before it was linked again.", [])
    link = drift.observation_link
    if link is not None and link.state not in ObservationLink.CURRENT_STATES:
        # The parent or staff removed the link since: linking again would undo their decision.
        return _relink_refused(drift, "removed_meanwhile", "The link was removed in the portal meanwhile.", [])
    with record_canvas_calls() as calls:
        try:
            for root_account_id in drift.root_account_ids or [None]:
                canvas.link(drift.canvas_observer_id, drift.canvas_student_id, root_account_id=root_account_id)
        except (CanvasTransient, CanvasThrottled) as exc:
            raise RetryLater(str(exc)) from exc
        except CanvasError as exc:
            return _relink_refused(drift, "canvas_refused", f"Canvas refused: {type(exc).__name__}", calls)
        with transaction.atomic():
            now = timezone.now()
            Drift.objects.filter(pk=drift.pk).update(
                state=Drift.State.RELINKED, resolved_at=now, claimed_at=None, claimed_by="", updated_at=now
            )
            audit_event_record(
                action="link.relinked",
                actor=drift.resolved_by,
                actor_label="staff",
                subject=_drift_subject(drift),
                canvas_calls=calls,
                data={"root_account_ids": drift.root_account_ids},
                outcome="relinked",
            )


@transaction.atomic
def _relink_refused(drift: Drift, outcome: str, reason: str, calls: list[dict]) -> None:
    now = timezone.now()
    Drift.objects.filter(pk=drift.pk).update(
        state=Drift.State.OPEN,
        failure=reason,
        resolved_by=None,
        resolved_at=None,
        claimed_at=None,
        claimed_by="",
        updated_at=now,
    )
    audit_event_record(
        action="link.relink_failed",
        actor=drift.resolved_by,
        actor_label="staff",
        subject=_drift_subject(drift),
        canvas_calls=calls,
        outcome=outcome,
    )


# -- selectors for the drift page -----------------------------------------------------------------
@dataclass(frozen=True)
class DriftPage:
    latest: ReconciliationRun | None
    last_finished: ReconciliationRun | None
    in_canvas_only: list[Drift]
    in_portal_only: list[Drift]


def drift_page_get() -> DriftPage:
    """The latest run, the latest finished one (its counts) and the drift still to resolve, with
    ``held`` and ``adoptable`` set on each drift without a query per row."""
    latest = ReconciliationRun.objects.select_related("requested_by").first()
    last_finished = (
        ReconciliationRun.objects.filter(state=ReconciliationRun.State.DONE).order_by("-finished_at").first()
    )
    drift = list(
        Drift.objects.filter(state__in=(Drift.State.OPEN, Drift.State.RELINKING)).select_related(
            "parent__user", "student", "run"
        )
    )
    held = set(
        PairHold.objects.filter(lifted_at__isnull=True, student_id__in={d.student_id for d in drift}).values_list(
            "student_id", "parent_email"
        )
    )
    observer_ids = {d.canvas_observer_id for d in drift if d.parent_id is None}
    parents_now = dict(Parent.objects.filter(canvas_user_id__in=observer_ids).values_list("canvas_user_id", "pk"))
    for item in drift:
        email = item.parent.email.strip().lower() if item.parent else ""
        item.held = bool(email) and (item.student_id, email) in held
        item.adoptable = item.parent_id is not None or item.canvas_observer_id in parents_now
    return DriftPage(
        latest=latest,
        last_finished=last_finished,
        in_canvas_only=[d for d in drift if d.kind == Drift.Kind.IN_CANVAS_ONLY],
        in_portal_only=[d for d in drift if d.kind == Drift.Kind.IN_PORTAL_ONLY],
    )
