"""A worker killed with SIGKILL in the middle of an import: another worker finishes the run, and no
parent gets a second Canvas account. Needs worker processes, so PostgreSQL and Redis (CI)."""

from __future__ import annotations

import os
import signal
import time
import uuid

import pytest

from linking.models import ImportRow, ImportRun
from tests.linking.test_import_runs import family_row, make_students, preview_run
from tests.workers import use_worker_process, wait_for, worker_process

CLAIM_TIMEOUT = 2


def start_worker(queue: str, sim, log_path):
    # A short claim timeout, so that the dead worker's rows are taken over within the test.
    return worker_process(queue, sim, log_path, WORKER_CLAIM_TIMEOUT=str(CLAIM_TIMEOUT), CANVAS_TIMEOUT_READ="20")


def ready(log_path) -> bool:
    return b"ready" in log_path.read_bytes()


def test_a_run_survives_its_worker_being_killed(family, tmp_path):
    if not use_worker_process():
        pytest.skip("needs worker processes: PostgreSQL and Redis (REQUIRE_SERVICES=1 makes them required)")
    from portal.celery import app

    queue = f"killed-{uuid.uuid4().hex[:8]}"
    students = make_students(family, 4)
    emails = [f"{family.sim.unique('k')}@example.test" for _ in range(30)]
    run = preview_run([family_row(students[i % 4], email) for i, email in enumerate(emails)])
    family.sim.configure(latency_ms=200)  # slow enough to kill the worker mid-run

    first = start_worker(queue, family.sim, tmp_path / "first.log")
    second = None
    try:
        wait_for(lambda: ready(tmp_path / "first.log"), timeout=60, message="the first worker")
        # Start the run on this test's own queue, where only these workers listen (the start service,
        # tested elsewhere, would send it to the session's shared worker).
        ImportRun.objects.filter(pk=run.pk).update(state=ImportRun.State.QUEUED)
        app.send_task("linking.tasks.import_run_process", args=[str(run.pk)], queue=queue)
        wait_for(lambda: run.rows.filter(state=ImportRow.State.DONE).count() >= 4, timeout=60, message="some rows")

        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        done_at_kill = run.rows.filter(state=ImportRow.State.DONE).count()
        assert done_at_kill < len(emails), "the run finished before the worker was killed: slow the simulator"

        second = start_worker(queue, family.sim, tmp_path / "second.log")
        wait_for(lambda: ready(tmp_path / "second.log"), timeout=60, message="the second worker")
        time.sleep(CLAIM_TIMEOUT + 1)
        # What beat does every minute: queue again what the dead worker held (run on the new worker).
        app.send_task("linking.tasks.outbox_requeue", queue=queue)
        wait_for(lambda: not run.rows.filter(state__in=ImportRow.OPEN_STATES).exists(), timeout=90, message="the rest")
    finally:
        family.sim.reset()
        for process in (first, second):
            if process and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)

    assert set(run.rows.values_list("state", flat=True)) == {ImportRow.State.DONE}
    admin = family.admin()
    for row in run.rows.all():
        accounts = [u for u in admin.search_users(row.parent_email) if u.get("login_id") == row.parent_email]
        assert len(accounts) == 1, f"{row.parent_email} has {len(accounts)} Canvas accounts"
        assert admin.show_observee(accounts[0]["id"], row.canvas_student_id) is not None
