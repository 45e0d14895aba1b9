"""Celery tasks: the only code that waits on Canvas.

Each task takes ids, claims its row with a conditional update and acts only when it won the claim,
calls one service, and owns its retry policy. Rows are the outbox: ``outbox_requeue`` (every minute,
from beat) queues again whatever a lost message or a dead worker left behind.
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from linking.canvas import CanvasNotAuthorized, CanvasThrottled, CanvasTransient, admin_client, canvas_client
from linking.models import LinkRequest, ObservationLink, PairingCode, Parent
from linking.services import codes, links
from linking.services.links import RetryLater

logger = logging.getLogger(__name__)

# Longer than any one task can run (Celery's time limit), so a claim this old belongs to a dead worker.
STALE_CLAIM = timedelta(seconds=getattr(settings, "CELERY_TASK_TIME_LIMIT", 600) + 60)
# A row still waiting this long after it was saved or released has lost its queue message.
LOST_MESSAGE = timedelta(minutes=2)
UNEXPECTED_ERROR_RETRIES = 8


def backoff(retries: int, *, cap: float = 300.0) -> float:
    """Exponential backoff with jitter, so workers that failed together do not return together."""
    return min(cap, 2.0**retries) * random.uniform(0.5, 1.5)  # noqa: S311 - jitter, not security


def _work_claimed(task, work, *, release, what: str, retry_cap: float = 300.0) -> None:
    """Run a claimed row's service; on an outage or a crash hand the claim back and retry.

    A crash after Canvas answered is what the services' checks exist for (a redeem's
    ``redeem_started_at``, unlink's 404): the retry finds the work done instead of repeating it.
    """
    try:
        work()
    except RetryLater as exc:
        release()
        logger.info("%s: Canvas unavailable (%s); retrying", what, exc)
        raise task.retry(countdown=backoff(task.request.retries, cap=retry_cap)) from None
    except Exception as exc:
        release()
        logger.exception("%s failed unexpectedly; retrying", what)
        raise task.retry(
            exc=exc, countdown=backoff(task.request.retries), max_retries=UNEXPECTED_ERROR_RETRIES
        ) from exc


def _claimable(task_id: str, now) -> Q:
    return Q(claimed_by=task_id) | Q(claimed_at__lte=now - STALE_CLAIM) | Q(claimed_at__isnull=True)


# -- link requests --------------------------------------------------------------------------------
class _ParentBusy(Exception):
    pass


def claim_link_request(link_request_id: str, *, task_id: str) -> LinkRequest | None:
    """Claim a waiting request, one per parent at a time; None when there is nothing to do.

    A parent's requests run one after another so that, after a lost answer, the observees Canvas
    gained since can be attributed to the request that was redeeming.
    """
    now = timezone.now()
    with transaction.atomic():
        request = LinkRequest.objects.filter(pk=link_request_id).first()
        if request is None:
            return None
        Parent.objects.select_for_update().filter(pk=request.parent_id).first()
        busy = (
            LinkRequest.objects.filter(parent_id=request.parent_id, state=LinkRequest.State.LINKING)
            .exclude(pk=request.pk)
            .filter(claimed_at__gt=now - STALE_CLAIM)
            .exists()
        )
        if busy:
            raise _ParentBusy
        won = (
            LinkRequest.objects.filter(pk=request.pk)
            .filter(
                Q(state=LinkRequest.State.WAITING) | Q(Q(state=LinkRequest.State.LINKING) & _claimable(task_id, now))
            )
            .update(
                state=LinkRequest.State.LINKING,
                claimed_at=now,
                claimed_by=task_id,
                attempts=F("attempts") + 1,
                updated_at=now,
            )
        )
    if not won:
        return None
    return LinkRequest.objects.select_related("parent__user").get(pk=link_request_id)


def release_link_request(link_request_id: str) -> None:
    LinkRequest.objects.filter(pk=link_request_id, state=LinkRequest.State.LINKING).update(
        state=LinkRequest.State.WAITING, claimed_at=None, claimed_by="", updated_at=timezone.now()
    )


@shared_task(bind=True, acks_late=True, max_retries=None, ignore_result=True)
def link_request_process(self, link_request_id: str) -> None:
    """Redeem a parent's code in Canvas (find or create their observer account, then link)."""
    try:
        request = claim_link_request(link_request_id, task_id=self.request.id or "eager")
    except _ParentBusy:
        raise self.retry(countdown=1 + random.random() * 2) from None  # noqa: S311
    if request is None:
        return
    _work_claimed(
        self,
        lambda: links.link_request_redeem(link_request=request),
        release=lambda: release_link_request(link_request_id),
        what=f"link request {link_request_id}",
    )


# -- pairing codes --------------------------------------------------------------------------------
def claim_pairing_code(pairing_code_id: str, *, task_id: str) -> PairingCode | None:
    now = timezone.now()
    won = (
        PairingCode.objects.filter(pk=pairing_code_id)
        .filter(Q(state=PairingCode.State.PENDING) | Q(Q(state=PairingCode.State.CLAIMED) & _claimable(task_id, now)))
        .update(state=PairingCode.State.CLAIMED, claimed_at=now, claimed_by=task_id, attempts=F("attempts") + 1)
    )
    if not won:
        return None
    return PairingCode.objects.select_related("student__user", "requested_by").get(pk=pairing_code_id)


def release_pairing_code(pairing_code_id: str) -> None:
    PairingCode.objects.filter(pk=pairing_code_id, state=PairingCode.State.CLAIMED).update(
        state=PairingCode.State.PENDING, claimed_at=None, claimed_by=""
    )


def pairing_code_clients(pairing_code: PairingCode) -> list[tuple[str, object]]:
    """The student's own token first; the admin token as the fallback when one is configured.

    A code someone else asked for (staff printing a family letter) is made with the admin token only.
    """
    from linking.canvas_oauth.tokens import student_access_token

    clients = []
    student_user = pairing_code.student.user
    asked_by_student = student_user is not None and pairing_code.requested_by_id == student_user.pk
    try:
        token = student_access_token(student_user) if asked_by_student else None
    except (CanvasTransient, CanvasThrottled) as exc:
        raise RetryLater(str(exc)) from exc
    except CanvasNotAuthorized:
        token = None  # Canvas refused the portal's OAuth key: the admin token may still serve
    if token:
        clients.append(("student", canvas_client(token)))
    if settings.CANVAS_ADMIN_TOKEN:
        clients.append(("admin", admin_client()))
    return clients


@shared_task(bind=True, acks_late=True, max_retries=None, ignore_result=True)
def pairing_code_create(self, pairing_code_id: str) -> None:
    """Ask Canvas for a pairing code for the student who requested it."""
    pairing_code = claim_pairing_code(pairing_code_id, task_id=self.request.id or "eager")
    if pairing_code is None:
        return
    _work_claimed(
        self,
        lambda: codes.pairing_code_fetch(pairing_code=pairing_code, clients=pairing_code_clients(pairing_code)),
        release=lambda: release_pairing_code(pairing_code_id),
        what=f"pairing code {pairing_code_id}",
        # A student is watching the page: come back sooner than for a parent's request.
        retry_cap=20.0,
    )


@shared_task(bind=True, acks_late=True, max_retries=5, ignore_result=True)
def pairing_code_email_send(self, pairing_code_id: str, to: str) -> None:
    """Mail an active code to the address the student typed."""
    pairing_code = PairingCode.objects.select_related("student").filter(pk=pairing_code_id).first()
    if pairing_code is None or not pairing_code.is_usable:
        return
    try:
        codes.pairing_code_email_deliver(pairing_code=pairing_code, to=to)
    except OSError as exc:  # the mail server is down: try again later
        raise self.retry(exc=exc, countdown=backoff(self.request.retries)) from None


# -- notices to parents ---------------------------------------------------------------------------
@shared_task(bind=True, acks_late=True, max_retries=5, ignore_result=True)
def link_request_rejected_notify(self, link_request_id: str) -> None:
    """Tell the parent, in their language, that the school declined their request."""
    from linking.services.notices import link_request_rejected_send

    request = LinkRequest.objects.select_related("parent__user").filter(pk=link_request_id).first()
    if request is None or request.state != LinkRequest.State.REJECTED:
        return
    try:
        link_request_rejected_send(link_request=request)
    except OSError as exc:  # the mail server is down: try again later
        raise self.retry(exc=exc, countdown=backoff(self.request.retries)) from None


@shared_task(bind=True, acks_late=True, max_retries=5, ignore_result=True)
def observation_link_revoked_notify(self, link_id: str) -> None:
    """Tell the parent, in their language, that the school removed their link."""
    from linking.services.notices import observation_link_revoked_send

    link = ObservationLink.objects.select_related("parent__user", "student").filter(pk=link_id).first()
    if link is None:
        return
    try:
        observation_link_revoked_send(link=link)
    except OSError as exc:
        raise self.retry(exc=exc, countdown=backoff(self.request.retries)) from None


# -- unlinking ------------------------------------------------------------------------------------
def claim_observation_link(link_id: str, *, task_id: str) -> ObservationLink | None:
    now = timezone.now()
    won = (
        ObservationLink.objects.filter(pk=link_id, state=ObservationLink.State.REMOVING)
        .filter(_claimable(task_id, now))
        .update(claimed_at=now, claimed_by=task_id)
    )
    if not won:
        return None
    return ObservationLink.objects.select_related("parent__user", "student", "removed_by").get(pk=link_id)


def release_observation_link(link_id: str) -> None:
    ObservationLink.objects.filter(pk=link_id, state=ObservationLink.State.REMOVING).update(
        claimed_at=None, claimed_by="", updated_at=timezone.now()
    )


@shared_task(bind=True, acks_late=True, max_retries=None, ignore_result=True)
def observation_link_unlink(self, link_id: str) -> None:
    """Remove a link in Canvas after a parent (or staff) asked to."""
    link = claim_observation_link(link_id, task_id=self.request.id or "eager")
    if link is None:
        return
    _work_claimed(
        self,
        lambda: links.observation_link_unlink(link=link),
        release=lambda: release_observation_link(link_id),
        what=f"unlink {link_id}",
    )


# -- the outbox -----------------------------------------------------------------------------------
@shared_task(ignore_result=True)
def outbox_requeue() -> dict:
    """Queue again every row whose message was lost or whose worker died; returns the counts."""
    now = timezone.now()
    lost = now - LOST_MESSAGE
    stale = now - STALE_CLAIM
    requests = list(
        LinkRequest.objects.filter(
            Q(state=LinkRequest.State.WAITING, updated_at__lte=lost)
            | Q(state=LinkRequest.State.LINKING, claimed_at__lte=stale)
        ).values_list("pk", flat=True)
    )
    pairing_codes = list(
        PairingCode.objects.filter(
            Q(state=PairingCode.State.PENDING, updated_at__lte=lost)
            | Q(state=PairingCode.State.CLAIMED, claimed_at__lte=stale)
        ).values_list("pk", flat=True)
    )
    unlinks = list(
        ObservationLink.objects.filter(state=ObservationLink.State.REMOVING)
        .filter(Q(claimed_at__isnull=True, updated_at__lte=lost) | Q(claimed_at__lte=stale))
        .values_list("pk", flat=True)
    )
    for pk in requests:
        link_request_process.delay(str(pk))
    for pk in pairing_codes:
        pairing_code_create.delay(str(pk))
    for pk in unlinks:
        observation_link_unlink.delay(str(pk))
    counts = {"link_requests": len(requests), "pairing_codes": len(pairing_codes), "unlinks": len(unlinks)}
    if any(counts.values()):
        logger.warning("outbox: queued again %s", counts)
    return counts


# -- courses (staff letters) ----------------------------------------------------------------------
@shared_task(bind=True, acks_late=True, max_retries=5, ignore_result=True)
def courses_sync_run(self, requested_by_id: int | None = None) -> dict | None:
    """Read every course and its students from Canvas into the portal (staff asked, or a schedule).

    Idempotent, so nothing is claimed: a repeated or overlapping run writes the same rows.
    """
    from django.contrib.auth import get_user_model

    from linking.services.courses import courses_sync

    by = get_user_model().objects.filter(pk=requested_by_id).first() if requested_by_id else None
    try:
        return courses_sync(by=by)
    except (CanvasTransient, CanvasThrottled) as exc:
        logger.info("course sync: Canvas unavailable (%s); retrying", exc)
        raise self.retry(countdown=backoff(self.request.retries, cap=120.0)) from None


# -- end of courses (staff letters) ---------------------------------------------------------------


# -- reconciliation -------------------------------------------------------------------------------
def claim_reconciliation_run(run_id: str, *, task_id: str):
    """Claim a queued run (queued → running); None when another task holds it or it is finished."""
    from linking.models import ReconciliationRun

    now = timezone.now()
    won = (
        ReconciliationRun.objects.filter(pk=run_id)
        .filter(
            Q(state=ReconciliationRun.State.QUEUED)
            | Q(Q(state=ReconciliationRun.State.RUNNING) & _claimable(task_id, now))
        )
        .update(
            state=ReconciliationRun.State.RUNNING,
            claimed_at=now,
            claimed_by=task_id,
            started_at=now,
            attempts=F("attempts") + 1,
            updated_at=now,
        )
    )
    if not won:
        return None
    return ReconciliationRun.objects.select_related("requested_by").get(pk=run_id)


def release_reconciliation_run(run_id: str) -> None:
    from linking.models import ReconciliationRun

    ReconciliationRun.objects.filter(pk=run_id, state=ReconciliationRun.State.RUNNING).update(
        state=ReconciliationRun.State.QUEUED, claimed_at=None, claimed_by="", updated_at=timezone.now()
    )


@shared_task(bind=True, acks_late=True, max_retries=None, ignore_result=True)
def reconcile_run(self, run_id: str | None = None) -> None:
    """Compare the portal's links with Canvas and record the drift.

    Without ``run_id`` (the nightly beat) it asks for a run, which queues this task again with the
    run's id; a run still unfinished from before, and relinks left waiting, are queued again instead
    (their claims make a second message harmless).
    """
    from linking.models import Drift
    from linking.services import reconcile

    if run_id is None:
        run, created = reconcile.reconciliation_request(by=None)
        if not created:
            reconcile_run.delay(str(run.pk))
        now = timezone.now()
        waiting = Drift.objects.filter(state=Drift.State.RELINKING).filter(
            Q(claimed_at__isnull=True, updated_at__lte=now - LOST_MESSAGE) | Q(claimed_at__lte=now - STALE_CLAIM)
        )
        for pk in waiting.values_list("pk", flat=True):
            drift_relink_process.delay(str(pk))
        return
    run = claim_reconciliation_run(run_id, task_id=self.request.id or "eager")
    if run is None:
        return
    _work_claimed(
        self,
        lambda: reconcile.reconciliation_run(run=run),
        release=lambda: release_reconciliation_run(run_id),
        what=f"reconciliation run {run_id}",
    )


def claim_drift_relink(drift_id: str, *, task_id: str):
    from linking.models import Drift

    now = timezone.now()
    won = (
        Drift.objects.filter(pk=drift_id, state=Drift.State.RELINKING)
        .filter(_claimable(task_id, now))
        .update(claimed_at=now, claimed_by=task_id)
    )
    if not won:
        return None
    return Drift.objects.select_related("parent__user", "student", "observation_link", "resolved_by").get(pk=drift_id)


def release_drift_relink(drift_id: str) -> None:
    from linking.models import Drift

    Drift.objects.filter(pk=drift_id, state=Drift.State.RELINKING).update(
        claimed_at=None, claimed_by="", updated_at=timezone.now()
    )


@shared_task(bind=True, acks_late=True, max_retries=None, ignore_result=True)
def drift_relink_process(self, drift_id: str) -> None:
    """Link a parent and student again in Canvas (admin PUT) after staff chose to relink a drift."""
    from linking.services import reconcile

    drift = claim_drift_relink(drift_id, task_id=self.request.id or "eager")
    if drift is None:
        return
    _work_claimed(
        self,
        lambda: reconcile.drift_relink_apply(drift=drift),
        release=lambda: release_drift_relink(drift_id),
        what=f"relink drift {drift_id}",
    )


# -- end of reconciliation ------------------------------------------------------------------------


# -- audit retention ------------------------------------------------------------------------------
@shared_task(ignore_result=True)
def audit_retention_apply() -> int:
    """Nightly: anonymise the audit log's personal data under ``LinkPolicy.retention_days`` (None keeps it).

    Idempotent (an anonymised event is skipped), so a missed or repeated night does no harm.
    """
    from linking.audit.services import audit_personal_data_anonymise
    from linking.models import LinkPolicy

    retention_days = LinkPolicy.objects.filter(pk=1).values_list("retention_days", flat=True).first()
    if retention_days is None:
        return 0
    return audit_personal_data_anonymise(older_than_days=retention_days)


# -- end of audit retention -----------------------------------------------------------------------
