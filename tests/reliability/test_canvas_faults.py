"""Canvas throttles, answers 500s and hangs (after doing the work: the nasty case) for a while, then
recovers: every request ends linked, no parent gets a second Canvas account, no link is made twice."""

from __future__ import annotations

from tests.reliability.conftest import submit, wait_until_finished
from tests.reliability.counting import assert_nothing_lost_or_duplicated, tally
from tests.workers import wait_for

NEW_PARENTS = 24
PARENTS_IN_CANVAS = 16
# What the Canvas client logs for each fault (linking/canvas/client.py).
THROTTLED = r"canvas \w+ \S+ -> 403 throttled"
ERROR_500 = r"canvas \w+ \S+ -> 500 "
HANG = r"canvas \w+ \S+ -> None ReadTimeout"
HANG_AFTER_POST = r"canvas POST \S+ -> None ReadTimeout"


def test_every_request_ends_linked_after_canvas_throttles_errs_and_hangs(families, workers, sim):
    students = [families.student() for _ in range(NEW_PARENTS + PARENTS_IN_CANVAS)]
    codes = [families.code_for(student) for student in students]
    parents = [families.parent() for _ in range(NEW_PARENTS)]
    parents += [families.parent(in_canvas=True) for _ in range(PARENTS_IN_CANVAS)]
    worker = workers.start(CANVAS_TIMEOUT_READ="1")

    # First Canvas throttles every call (its bucket's high-water mark below one request's reservation).
    sim.configure(throttle_hwm=40)
    requests = [request for parent, code in zip(parents, codes, strict=True) for request in submit(parent, code)]
    strikes(worker, THROTTLED, 8)
    # Then a quarter of calls fail with 500 before doing anything, and some do their work but answer
    # only after the worker stopped waiting (a POST among them: an account made or a code spent unseen).
    sim.reset()
    sim.configure(error_rate=0.25, hang_rate=0.2, hang_seconds=2)
    strikes(worker, ERROR_500, 8)
    strikes(worker, HANG_AFTER_POST, 2)
    sim.reset()
    wait_until_finished(requests)

    result = tally("Canvas throttling, 500s and hangs, then recovery", sim, requests)
    assert_nothing_lost_or_duplicated(result)
    retried = sum(1 for request in requests if _attempts(request) > 1)
    seen = {name: len(worker.lines(p)) for name, p in [("throttled", THROTTLED), ("500", ERROR_500), ("hang", HANG)]}
    print(f"Canvas faults the worker met: {seen}, {len(worker.lines(HANG_AFTER_POST))} of the hangs after a POST;")
    print(f"requests that needed more than one attempt: {retried} of {len(requests)}")
    assert retried > 0


def strikes(worker, pattern: str, times: int) -> None:
    """Keep a fault on until it has struck the worker ``times`` times (read from the worker's log)."""
    wait_for(lambda: len(worker.lines(pattern)) >= times, timeout=60, message=f"{times} x {pattern!r}")


def _attempts(request) -> int:
    request.refresh_from_db()
    return request.attempts
