"""Work for one parent, or on one code, arriving at once on a worker running four tasks in parallel.

A new parent's email reaches Canvas by three paths together (two codes they typed, and a school import
row): one Canvas account, every child linked once. One code sent by two parents together: one link,
and one failure the other parent reads in plain words.
"""

from __future__ import annotations

from collections import Counter

from django.test import Client
from django.urls import reverse

from linking.models import ImportRow, LinkRequest, ObservationLink
from linking.services.import_runs import import_run_start
from tests.linking.test_import_runs import family_row, preview_run, wait_until_done
from tests.reliability.conftest import submit, wait_until_finished
from tests.reliability.counting import assert_nothing_lost_or_duplicated, tally
from tests.workers import wait_for

PARENTS = 6
# What the Canvas client logs when an account creation finds the login taken: another path won.
LOGIN_TAKEN = r"canvas POST /api/v1/accounts/\S+/users -> 400 CanvasLoginTaken"
# Every call takes half a second, and Canvas's bucket and the portal's cap are roomy, so that the paths
# overlap as staged below (throttling is tested in test_canvas_faults).
SLOW_ROOMY_CANVAS = {"latency_ms": 500, "throttle_hwm": 5000, "throttle_maximum": 6000}


def test_a_new_parent_reaching_canvas_by_the_form_and_an_import_at_once_gets_one_account(families, workers, sim):
    parents = [families.parent() for _ in range(PARENTS)]
    typed = [(families.student(), families.student()) for _ in parents]
    codes = [(families.code_for(first), families.code_for(second)) for first, second in typed]
    imported = [families.student() for _ in parents]
    rows = [
        family_row({"id": student.canvas_user_id, "sis_user_id": f"S{student.canvas_user_id}"}, parent.email)
        for parent, student in zip(parents, imported, strict=True)
    ]
    early, late = preview_run(rows[: PARENTS // 2]), preview_run(rows[PARENTS // 2 :])
    sim.configure(**SLOW_ROOMY_CANVAS)
    # Two workers, four tasks each: every parent's first code and the imports run side by side.
    pool = [workers.start(name, CANVAS_MAX_IN_FLIGHT="16") for name in ("one", "two")]

    # Each parent sends two codes at once (the worker takes one parent's requests one after the other).
    requests = [request for parent, pair in zip(parents, codes, strict=True) for request in submit(parent, *pair)]
    early_parents, late_parents = parents[: PARENTS // 2], parents[PARENTS // 2 :]
    # While a parent's first request is still looking for them in Canvas, the early import creates
    # their account: the form's own creation then finds the login taken.
    wait_for(
        lambda: all(_requests_of(p).filter(state=LinkRequest.State.LINKING).exists() for p in early_parents),
        message="the early parents' first requests to start",
    )
    import_run_start(run=early, by=None)
    # While the form's creation is on its way to Canvas, the late import tries to create the same account.
    wait_for(
        lambda: all(_requests_of(p).filter(redeem_started_at__isnull=False).exists() for p in late_parents),
        message="the late parents' first requests to create their accounts",
    )
    import_run_start(run=late, by=None)
    wait_until_finished(requests)
    wait_until_done(early)
    wait_until_done(late)

    for run in (early, late):
        assert set(run.rows.values_list("state", flat=True)) == {ImportRow.State.DONE}
    result = tally("one new parent by the form and an import at once", sim, requests, emails=[p.email for p in parents])
    assert_nothing_lost_or_duplicated(result)
    for parent, (first, second), third in zip(parents, typed, imported, strict=True):
        children = {first.canvas_user_id, second.canvas_user_id, third.canvas_user_id}
        [account] = sim.users(email=parent.email)
        assert {o["student_id"] for o in account["observees"]} == children
        in_portal = ObservationLink.objects.filter(parent=parent).values_list("student__canvas_user_id", flat=True)
        assert sorted(in_portal) == sorted(children)
    collisions = sum(len(worker.lines(LOGIN_TAKEN)) for worker in pool)
    assert collisions > 0, "no creation met another: the paths did not overlap"
    made_by_import = {
        run: run.rows.filter(outcome=ImportRow.Outcome.NEW_PARENT_LINKED).count() for run in (early, late)
    }
    print(f"{len(requests)} requests and {PARENTS} import rows for {PARENTS} new parents; {collisions} account")
    print(f"creations found the login taken; the import made {made_by_import[early]} of the early parents' accounts")
    print(f"and {made_by_import[late]} of the late ones'")


def _requests_of(parent):
    return LinkRequest.objects.filter(parent=parent)


def test_one_code_sent_by_two_parents_at_once_links_one_and_tells_the_other_plainly(families, workers, sim):
    students = [families.student() for _ in range(PARENTS)]
    codes = [families.code_for(student) for student in students]
    # Each code is raced by a parent new to Canvas and one already there, each sending first in turn.
    new, known = [families.parent() for _ in students], [families.parent(in_canvas=True) for _ in students]
    # Each losing code costs Canvas's bucket 200 units; a roomy one keeps this test about the race.
    sim.configure(**SLOW_ROOMY_CANVAS)
    workers.start()

    requests = []
    for number, (code, one, other) in enumerate(zip(codes, new, known, strict=True)):
        first, second = (one, other) if number % 2 else (other, one)
        requests += submit(first, code) + submit(second, code)
    wait_until_finished(requests)

    result = tally(
        "one code sent by two parents at once",
        sim,
        requests,
        expected=(LinkRequest.State.LINKED, LinkRequest.State.FAILED),
    )
    assert_nothing_lost_or_duplicated(result)
    by_code = [
        sorted(LinkRequest.objects.filter(pk__in=[a.pk, b.pk]), key=lambda r: r.state) for a, b in pairs_of(requests)
    ]
    assert all([r.state for r in pair] == ["failed", "linked"] for pair in by_code)
    failed = [pair[0] for pair in by_code]
    assert {r.failure for r in failed} == {LinkRequest.Failure.INVALID_CODE}
    for request in failed:
        # A parent new to Canvas whose code was already spent gets no account either.
        if request.parent in new:
            assert sim.users(email=request.parent.email) == []
        client = Client()
        client.force_login(request.parent.user)
        page = client.get(reverse("parent_home")).content.decode()
        assert "already used" in page
    print(f"winners: {Counter('new parent' if pair[1].parent in new else 'parent in Canvas' for pair in by_code)}")


def pairs_of(items: list) -> list[tuple]:
    return list(zip(items[::2], items[1::2], strict=True))
