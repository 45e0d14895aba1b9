"""A worker killed with SIGKILL while it waits for Canvas, after Canvas acted: once a new worker runs,
the outbox (``outbox_requeue``) hands it what the dead worker held, and every request completes once."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from linking.models import LinkRequest
from portal.celery import app
from tests.reliability.conftest import submit, wait_until_finished
from tests.reliability.counting import assert_nothing_lost_or_duplicated, tally
from tests.workers import wait_for

# A short claim timeout in the workers' environment stands for the 11 minutes after which production
# calls a claim stale; everything else is as shipped.
CLAIM_TIMEOUT = 3


def test_a_worker_killed_inside_a_canvas_call_leaves_nothing_lost_or_twice(families, workers, sim):
    pairs = [(families.parent(), families.student()) for _ in range(4)]
    pairs += [(families.parent(in_canvas=True), families.student()) for _ in range(4)]
    codes = [families.code_for(student) for _, student in pairs]
    # Every answer comes late, after Canvas did the work, so the worker can be killed between Canvas
    # acting and the portal recording it: where a crash costs the most.
    sim.configure(hang_rate=1.0, hang_seconds=3)
    first = workers.start("first", WORKER_CLAIM_TIMEOUT=str(CLAIM_TIMEOUT), CANVAS_TIMEOUT_READ="20")
    requests, child = [], {}
    for (parent, student), code in zip(pairs, codes, strict=True):
        [request] = submit(parent, code)
        requests.append(request)
        child[request.pk] = student.canvas_user_id
    acted = wait_for(
        lambda: _linked_in_canvas_only(sim, requests, child),
        timeout=30,
        message="Canvas to link a pair the portal has not recorded",
    )
    first.kill()

    held = list(LinkRequest.objects.filter(pk__in=[r.pk for r in requests], state=LinkRequest.State.LINKING))
    acted = [request for request in held if request.pk in {r.pk for r in acted}]
    assert acted and all(request.redeem_started_at for request in acted)
    sim.reset()
    second = workers.start("second", WORKER_CLAIM_TIMEOUT=str(CLAIM_TIMEOUT))
    # Redis would hand the dead worker's messages back only after its visibility timeout (an hour). The
    # outbox takes the claims once they are stale, as beat runs it every minute, on the new worker.
    wait_for(
        lambda: (
            not LinkRequest.objects.filter(
                pk__in=[r.pk for r in held], claimed_at__gt=timezone.now() - timedelta(seconds=CLAIM_TIMEOUT)
            ).exists()
        ),
        timeout=30,
        message="the dead worker's claims to go stale",
    )
    app.send_task("linking.tasks.outbox_requeue")
    wait_until_finished(requests)

    result = tally("worker SIGKILLed inside a Canvas call", sim, requests)
    assert_nothing_lost_or_duplicated(result)
    assert second.lines(r"outbox: queued again \{'link_requests': [1-9]")
    print(f"the kill caught {len(held)} requests mid-task, {len(acted)} of them after Canvas had linked")


def _linked_in_canvas_only(sim, requests, child: dict) -> list[LinkRequest]:
    """The requests whose link Canvas has made while the portal is still working on them."""
    found = []
    ids = [request.pk for request in requests]
    for request in LinkRequest.objects.filter(pk__in=ids, state=LinkRequest.State.LINKING).select_related("parent"):
        observees = {o["student_id"] for user in sim.users(email=request.parent.email) for o in user["observees"]}
        if child[request.pk] in observees:
            found.append(request)
    return found
