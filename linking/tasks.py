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
from portal.database import close_broken_connections, database_unavailable

logger = logging.getLogger(__name__)

# Longer than any one task can run (Celery's time limit), so a claim this old belongs to a dead worker.
STALE_CLAIM = timedelta(seconds=settings.WORKER_CLAIM_TIMEOUT)
# The longest a task waits before its retry (every backoff's cap, before its jitter).
MAX_BACKOFF = float(settings.TASK_RETRY_BACKOFF_CAP)
# A row still waiting this long after it was saved or released has lost its queue message. Longer than
# any retry's wait, so that the outbox never re-queues a row that is only backing off from an outage.
LOST_MESSAGE = timedelta(seconds=MAX_BACKOFF * 1.5 + 60)
UNEXPECTED_ERROR_RETRIES = 8


def backoff(retries: int, *, cap: float = MAX_BACKOFF) -> float:
    """Exponential backoff with jitter, so workers that failed together do not return together."""
    return min(cap, MAX_BACKOFF, 2.0**retries) * random.uniform(0.5, 1.5)  # noqa: S311 - jitter, not security


def _hand_back(release, what: str) -> None:
    """Release a claim after a failure; when the database is away, leave it: the retry (same task id) owns it."""
    for _ in range(2):
        try:
            return release()
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            # A connection the server dropped stays dead until closed (Django reconnects between tasks).
            close_broken_connections()
    logger.warning("%s: the database is unavailable; the retry takes its claim back", what)


def _claim_or_retry(task, claim, *, what: str):
    """Run a task's claim; a dropped database connection retries the task soon instead of losing it
    until the outbox's next look (a claim it did make belongs to its task id, which the retry keeps)."""
    try:
        return claim()
    except Exception as exc:
        if not database_unavailable(exc):
            raise
        close_broken_connections()
        logger.warning("%s: the database is unavailable (%s); retrying", what, exc)
        raise task.retry(countdown=backoff(task.request.retries)) from None


def _work_claimed(task, work, *, release, what: str, retry_cap: float = MAX_BACKOFF) -> None:
    """Run a claimed row's service; on an outage or a crash hand the claim back and retry.

    A crash after Canvas answered is what the services' checks exist for (a redeem's
    ``redeem_started_at``, unlink's 404): the retry finds the work done instead of repeating it.
    """
    try:
        work()
    except Exception as exc:
        _hand_back(release, what)
        if isinstance(exc, RetryLater) or database_unavailable(exc):
            # An outage (Canvas's or the database's), not a bug: retried until it ends.
            outage = "Canvas unavailable" if isinstance(exc, RetryLater) else "the database is unavailable"
            logger.warning("%s: %s (%s); retrying", what, outage, exc)
            raise task.retry(countdown=backoff(task.request.retries, cap=retry_cap)) from None
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
    return LinkRequest.objects.select_related("parent__user__language_preference").get(pk=link_request_id)


def release_link_request(link_request_id: str) -> None:
    LinkRequest.objects.filter(pk=link_request_id, state=LinkRequest.State.LINKING).update(
        state=LinkRequest.State.WAITING, claimed_at=None, claimed_by="", updated_at=timezone.now()
    )


@shared_task(bind=True, acks_late=True, max_retries=None, ignore_result=True)
def link_request_process(self, link_request_id: str) -> None:
    """Redeem a parent's code in Canvas (find or create their observer account, then link)."""
    try:
        request = _claim_or_retry(
            self,
            lambda: claim_link_request(link_request_id, task_id=self.request.id or "eager"),
            what=f"link request {link_request_id}",
        )
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
    pairing_code = _claim_or_retry(
        self,
        lambda: claim_pairing_code(pairing_code_id, task_id=self.request.id or "eager"),
        what=f"pairing code {pairing_code_id}",
    )
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
def pairing_code_email_send(self, pairing_code_id: str, to: str, language: str = "") -> None:
    """Mail an active code to the address the student typed (``language``: the student's, when they did)."""
    pairing_code = PairingCode.objects.select_related("student").filter(pk=pairing_code_id).first()
    if pairing_code is None or not pairing_code.is_usable:
        return
    try:
        codes.pairing_code_email_deliver(pairing_code=pairing_code, to=to, sender_language=language)
    except OSError as exc:  # the mail server is down: try again later
        raise self.retry(exc=exc, countdown=backoff(self.request.retries)) from None


# -- notices to parents ---------------------------------------------------------------------------
@shared_task(bind=True, acks_late=True, max_retries=5, ignore_result=True)
def link_request_rejected_notify(self, link_request_id: str, language: str = "") -> None:
    """Tell the parent, in their language (else ``language``, the staff member's), that the school declined
    their request."""
    from linking.services.notices import link_request_rejected_send

    request = LinkRequest.objects.select_related("parent__user__language_preference").filter(pk=link_request_id).first()
    if request is None or request.state != LinkRequest.State.REJECTED:
        return
    try:
        link_request_rejected_send(link_request=request, sender_language=language)
    except OSError as exc:  # the mail server is down: try again later
        raise self.retry(exc=exc, countdown=backoff(self.request.retries)) from None


@shared_task(bind=True, acks_late=True, max_retries=5, ignore_result=True)
def observation_link_revoked_notify(self, link_id: str, language: str = "") -> None:
    """Tell the parent, in their language (else ``language``, the staff member's), that the school removed
    their link."""
    from linking.services.notices import observation_link_revoked_send

    link = (
        ObservationLink.objects.select_related("parent__user__language_preference", "student")
        .filter(pk=link_id)
        .first()
    )
    if link is None:
        return
    try:
        observation_link_revoked_send(link=link, sender_language=language)
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
    link = _claim_or_retry(
        self, lambda: claim_observation_link(link_id, task_id=self.request.id or "eager"), what=f"unlink {link_id}"
    )
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
    counts.update(import_runs_requeue())  # defined in "imports: run" below
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


@shared_task(ignore_result=True)
def audit_anchor_write() -> str:
    """Nightly: copy the audit chain's head (``SEQ:HASH``) to the log and to ``AUDIT_ANCHOR_FILE``."""
    from linking.audit.services import audit_anchor_write as write

    return str(write() or "")


@shared_task(ignore_result=True)
def client_addresses_forget() -> int:
    """Nightly: forget where codes were entered from once the guessing limits no longer need it."""
    from linking.services.guessing import client_addresses_forget as forget

    return forget()


# -- end of audit retention -----------------------------------------------------------------------


# -- imports: check -------------------------------------------------------------------------------
# One pass of a check stops after this long and queues the rest, well inside the task time limit.
IMPORT_CHECK_PASS_SECONDS = 240.0


def claim_import_run_check(run_id: str, *, task_id: str):
    """Claim a run being checked; None when another task holds it or the check is over."""
    from linking.models import ImportRun

    now = timezone.now()
    won = (
        ImportRun.objects.filter(pk=run_id, state=ImportRun.State.CHECKING)
        .filter(_claimable(task_id, now))
        .update(claimed_at=now, claimed_by=task_id, updated_at=now)
    )
    if not won:
        return None
    return ImportRun.objects.get(pk=run_id)


def release_import_run_check(run_id: str) -> None:
    from linking.models import ImportRun

    ImportRun.objects.filter(pk=run_id, state=ImportRun.State.CHECKING).update(
        claimed_at=None, claimed_by="", updated_at=timezone.now()
    )


@shared_task(bind=True, acks_late=True, max_retries=None, ignore_result=True)
def import_run_check_process(self, run_id: str) -> None:
    """Check an import run's rows against the portal and Canvas (reads only) and save its preview.

    A long file is checked in passes that each queue the next; a drop-folder run (nobody is there to
    press Start) is started once its check is done.
    """
    from linking.services import imports

    run = claim_import_run_check(run_id, task_id=self.request.id or "eager")
    if run is None:
        return
    finished: list[bool] = []
    _work_claimed(
        self,
        lambda: finished.append(imports.import_run_check(run=run, seconds=IMPORT_CHECK_PASS_SECONDS)),
        release=lambda: release_import_run_check(run_id),
        what=f"import run check {run_id}",
    )
    if not finished[0]:
        release_import_run_check(run_id)
        import_run_check_process.delay(run_id)
        return
    try:
        imports.import_run_start_if_unattended(run)
    except Exception:
        logger.exception("import run %s: checked, but it could not be started", run_id)


@shared_task(ignore_result=True)
def import_drop_folder_pickup() -> dict:
    """Every 5 minutes: queue again checks a lost message or a dead worker left behind, then import
    the files waiting in ``IMPORT_DROP_FOLDER`` (when it is set)."""
    from pathlib import Path

    from linking.models import ImportRun
    from linking.services.imports import import_drop_folder_scan

    now = timezone.now()
    lost = ImportRun.objects.filter(state=ImportRun.State.CHECKING).filter(
        Q(claimed_at__isnull=True, updated_at__lte=now - LOST_MESSAGE) | Q(claimed_at__lte=now - STALE_CLAIM)
    )
    requeued = [str(pk) for pk in lost.values_list("pk", flat=True)]
    for pk in requeued:
        import_run_check_process.delay(pk)
    runs = []
    if folder := getattr(settings, "IMPORT_DROP_FOLDER", ""):
        if Path(folder).is_dir():
            runs = import_drop_folder_scan(folder=Path(folder))
        else:
            logger.error("IMPORT_DROP_FOLDER %s is not a folder this worker can read", folder)
    return {"checks_requeued": len(requeued), "files_imported": len(runs)}


# -- end of imports: check ------------------------------------------------------------------------


# -- imports: run ---------------------------------------------------------------------------------
def claim_import_run(run_id: str, *, task_id: str):
    """Claim a queued run (queued → running); None when another task holds it, or it is paused or over."""
    from django.db.models.functions import Coalesce

    from linking.models import ImportRun

    now = timezone.now()
    won = (
        ImportRun.objects.filter(pk=run_id)
        .filter(Q(state=ImportRun.State.QUEUED) | Q(Q(state=ImportRun.State.RUNNING) & _claimable(task_id, now)))
        .update(
            state=ImportRun.State.RUNNING,
            claimed_at=now,
            claimed_by=task_id,
            started_at=Coalesce(F("started_at"), now),
            updated_at=now,
        )
    )
    if not won:
        return None
    return ImportRun.objects.select_related("created_by").get(pk=run_id)


def release_import_run(run_id: str) -> None:
    from linking.models import ImportRun

    ImportRun.objects.filter(pk=run_id, state=ImportRun.State.RUNNING).update(
        claimed_at=None, claimed_by="", updated_at=timezone.now()
    )


@shared_task(bind=True, acks_late=True, max_retries=None, ignore_result=True)
def import_run_process(self, run_id: str) -> None:
    """Start or resume an import run: fan its waiting rows out to batch tasks, or (``sis_import``)
    submit it to Canvas as one SIS import and follow that to the end."""
    from linking.models import ImportRun
    from linking.services import import_runs

    run = claim_import_run(run_id, task_id=self.request.id or "eager")
    if run is None:
        return
    if run.method == ImportRun.Method.SIS_IMPORT:
        _work_claimed(
            self,
            lambda: import_runs.import_run_sis_process(run=run),
            release=lambda: release_import_run(run_id),
            what=f"import run {run_id} (SIS import)",
        )
        return
    import_runs.import_run_fan_out(run=run)


@shared_task(bind=True, acks_late=True, max_retries=None, ignore_result=True)
def import_rows_process(self, run_id: str, row_ids: list[int]) -> None:
    """Work one batch of an import run's rows; rows Canvas could not take now are retried with backoff.

    Each row is claimed (waiting, or held by this task or a dead worker), so a redelivered or repeated
    message does no row twice; a pause or a cancel stops the batch between rows.
    """
    from linking.models import ImportRun
    from linking.services import import_runs

    rows = import_runs.import_rows_claim(run_id=run_id, row_ids=row_ids, task_id=self.request.id or "eager")
    waiting = import_runs.import_rows_work(rows=rows) if rows else []
    running = ImportRun.objects.filter(pk=run_id, state=ImportRun.State.RUNNING).exists()
    if waiting and running:
        raise self.retry(countdown=backoff(self.request.retries, cap=60.0))
    import_runs.import_run_finish_if_done(run_id=run_id)


def import_runs_requeue() -> dict:
    """Queue again the import work a lost message or a dead worker left behind (safe to call any time).

    Queued runs not picked up; rows a dead worker holds (``STALE_CLAIM``); and the waiting rows of a
    running run that has finished no row for ``LOST_MESSAGE``. ``outbox_requeue`` calls this.
    """
    from django.db.models import Max

    from linking.models import ImportRow, ImportRun
    from linking.services import import_runs

    now = timezone.now()
    queued = list(
        ImportRun.objects.filter(state=ImportRun.State.QUEUED, updated_at__lte=now - LOST_MESSAGE).values_list(
            "pk", flat=True
        )
    )
    for pk in queued:
        import_run_process.delay(str(pk))
    batches = 0
    for run in ImportRun.objects.filter(state=ImportRun.State.RUNNING):
        if run.method == ImportRun.Method.SIS_IMPORT:
            if run.claimed_at is None or run.claimed_at <= now - STALE_CLAIM:
                import_run_process.delay(str(run.pk))
                batches += 1
            continue
        last = run.rows.aggregate(last=Max("finished_at"))["last"] or run.started_at or run.updated_at
        idle = last <= now - LOST_MESSAGE
        stale = run.rows.filter(state=ImportRow.State.CLAIMED, claimed_at__lte=now - STALE_CLAIM).exists()
        if idle or stale:
            batches += import_runs.import_run_fan_out(run=run, stale_before=now - STALE_CLAIM, waiting=idle)
    counts = {"import_runs": len(queued), "import_batches": batches}
    if any(counts.values()):
        logger.warning("imports: queued again %s", counts)
    return counts


# -- end of imports: run --------------------------------------------------------------------------
