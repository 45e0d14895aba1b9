"""A parent's codes become links in Canvas, through the real worker and the simulator."""

from __future__ import annotations

from unittest import mock

import pytest

from linking.audit.models import AuditEvent
from linking.models import LinkRequest, ObservationLink, Parent
from linking.services import links
from linking.services.links import link_requests_submit
from linking.tasks import claim_link_request, outbox_requeue
from tests.workers import wait_for


def finished(request: LinkRequest) -> LinkRequest:
    def check():
        request.refresh_from_db()
        return request if request.state in (LinkRequest.State.LINKED, LinkRequest.State.FAILED) else None

    return wait_for(check, message=f"link request {request.pk} to finish")


def submit(parent, *codes, source=LinkRequest.Source.TYPED) -> list[LinkRequest]:
    return link_requests_submit(parent=parent, codes=list(codes), source=source).created


def canvas_accounts_with_login(family, login: str) -> list[dict]:
    return [u for u in family.admin().search_users(login) if (u.get("login_id") or "").lower() == login.lower()]


def test_a_new_parent_gets_one_canvas_account_linked_to_the_child(family):
    student, parent = family.student(), family.parent()
    [request] = submit(parent, family.code_for(student))

    assert finished(request).state == LinkRequest.State.LINKED
    parent.refresh_from_db()
    assert parent.canvas_user_id is not None
    assert [s["id"] for s in family.admin().list_observees(parent.canvas_user_id)] == [student.canvas_user_id]
    assert len(canvas_accounts_with_login(family, parent.email)) == 1
    # Canvas mails the new parent to set their own password.
    assert [m["kind"] for m in family.sim.messages(to=parent.email)] == ["complete_registration"]
    link = ObservationLink.objects.get(parent=parent)
    assert (link.student, link.state, link.method, link.root_account_id) == (student, "active", "pairing_code", 1)
    assert request.code == ""


def test_an_existing_canvas_parent_is_linked_without_a_second_account(family):
    student, parent = family.student(), family.parent(in_canvas=True)
    [request] = submit(parent, family.code_for(student))

    assert finished(request).state == LinkRequest.State.LINKED
    parent.refresh_from_db()
    assert parent.canvas_user_id == parent.canvas["id"]
    assert len(canvas_accounts_with_login(family, parent.email)) == 1
    assert family.sim.messages(to=parent.email) == []


def test_two_children_at_once_are_both_linked(family):
    first, second, parent = family.student(), family.student(), family.parent()
    requests = submit(parent, family.code_for(first), family.code_for(second))

    assert {finished(r).state for r in requests} == {LinkRequest.State.LINKED}
    parent.refresh_from_db()
    in_canvas = {s["id"] for s in family.admin().list_observees(parent.canvas_user_id)}
    assert in_canvas == {first.canvas_user_id, second.canvas_user_id}
    assert set(ObservationLink.objects.filter(parent=parent).values_list("student", flat=True)) == {
        first.pk,
        second.pk,
    }
    assert len(canvas_accounts_with_login(family, parent.email)) == 1


def test_a_code_used_twice_fails_the_second_time_with_what_to_do(family):
    student, parent, other = family.student(), family.parent(), family.parent()
    code = family.code_for(student)
    [first] = submit(parent, code)
    assert finished(first).state == LinkRequest.State.LINKED
    [second] = submit(other, code)

    assert finished(second).state == LinkRequest.State.FAILED
    assert second.failure == LinkRequest.Failure.INVALID_CODE
    assert "new code" in second.advice


def test_a_wrong_code_creates_no_canvas_account(family):
    parent = family.parent()
    [request] = submit(parent, "zzZZ99")

    assert finished(request).state == LinkRequest.State.FAILED
    assert request.failure == LinkRequest.Failure.INVALID_CODE
    assert canvas_accounts_with_login(family, parent.email) == []
    assert not ObservationLink.objects.exists()


def test_a_crash_after_canvas_answered_is_adopted_when_the_task_is_redelivered(family):
    student, parent = family.student(), family.parent(in_canvas=True)
    # Saved without queueing, so this test drives the task's steps itself.
    request = LinkRequest.objects.create(parent=parent, code=family.code_for(student))
    claimed = claim_link_request(str(request.pk), task_id="task-1")
    with mock.patch.object(links, "_record_linked", side_effect=SystemExit("worker killed")):
        with pytest.raises(SystemExit):
            links.link_request_redeem(link_request=claimed)
    # Canvas spent the code and linked; the portal recorded nothing. The broker redelivers the task.
    assert family.admin().show_observee(parent.canvas["id"], student.canvas_user_id) is not None
    assert LinkRequest.objects.get(pk=request.pk).state == LinkRequest.State.LINKING
    redelivered = claim_link_request(str(request.pk), task_id="task-1")
    links.link_request_redeem(link_request=redelivered)

    request.refresh_from_db()
    assert (request.state, request.student, request.attempts) == (LinkRequest.State.LINKED, student, 2)
    assert ObservationLink.objects.filter(parent=parent, student=student).count() == 1


def test_another_task_cannot_take_a_fresh_claim(family):
    student, parent = family.student(), family.parent()
    request = LinkRequest.objects.create(parent=parent, code=family.code_for(student))
    assert claim_link_request(str(request.pk), task_id="task-1") is not None
    assert claim_link_request(str(request.pk), task_id="task-2") is None


def test_a_lost_answer_is_checked_in_canvas_before_anything_is_repeated(family):
    student, parent = family.student(), family.parent(in_canvas=True)
    Parent.objects.filter(pk=parent.pk).update(canvas_user_id=parent.canvas["id"])
    code = family.code_for(student)
    family.sim.configure(hang_rate=1.0, hang_seconds=3)
    [request] = submit(parent, code)
    wait_for(
        lambda: LinkRequest.objects.filter(pk=request.pk, redeem_started_at__isnull=False).exists(),
        message="the redeem to start",
    )
    family.sim.reset()

    assert finished(request).state == LinkRequest.State.LINKED
    assert family.admin().show_observee(parent.canvas["id"], student.canvas_user_id) is not None


def test_a_canvas_outage_is_ridden_out(family):
    student, parent = family.student(), family.parent()
    code = family.code_for(student)
    family.sim.configure(error_rate=1.0)
    [request] = submit(parent, code)
    wait_for(lambda: LinkRequest.objects.get(pk=request.pk).attempts >= 1, message="a first attempt")
    family.sim.reset()

    assert finished(request).state == LinkRequest.State.LINKED
    assert len(canvas_accounts_with_login(family, parent.email)) == 1


def test_every_link_is_audited_with_its_canvas_calls_and_no_secret(family):
    student, parent = family.student(), family.parent()
    code = family.code_for(student)
    [request] = submit(parent, code)
    finished(request)

    created = AuditEvent.objects.get(action="link.created")
    assert created.subject["link_request"] == str(request.pk)
    assert created.subject["canvas_student"] == student.canvas_user_id
    calls = [(call["method"], call["path"].split("?")[0], call["status"]) for call in created.canvas_calls]
    assert ("POST", "/api/v1/accounts/self/users", 200) in calls
    everything = str(list(AuditEvent.objects.values()))
    assert code not in everything
    assert family.sim.admin_token not in everything


def test_removing_a_link_unlinks_it_in_canvas(family):
    from linking.services.links import observation_link_remove_request

    student, parent = family.student(), family.parent(in_canvas=True)
    [request] = submit(parent, family.code_for(student))
    finished(request)
    link = ObservationLink.objects.get(parent=parent)
    observation_link_remove_request(link=link, by=parent.user, actor_label="parent")

    wait_for(
        lambda: ObservationLink.objects.filter(pk=link.pk, state=ObservationLink.State.REMOVED).exists(),
        message="the unlink",
    )
    assert family.admin().show_observee(parent.canvas["id"], student.canvas_user_id) is None
    assert AuditEvent.objects.filter(action="link.removed", outcome="removed").count() == 1


def test_the_outbox_queues_again_a_request_whose_message_was_lost(family):
    from datetime import timedelta

    from django.utils import timezone

    student, parent = family.student(), family.parent()
    # Saved, but its message never reached the broker (Redis restarted, say).
    request = LinkRequest.objects.create(parent=parent, code=family.code_for(student))
    # Five minutes could be a retry backing off from an outage: left alone, or it would hit Canvas early.
    LinkRequest.objects.filter(pk=request.pk).update(updated_at=timezone.now() - timedelta(minutes=5))
    assert outbox_requeue()["link_requests"] == 0
    LinkRequest.objects.filter(pk=request.pk).update(updated_at=timezone.now() - timedelta(minutes=10))

    assert outbox_requeue()["link_requests"] == 1
    assert finished(request).state == LinkRequest.State.LINKED


@pytest.mark.parametrize("code", ["abc", "toolong1", "a-b-c!"])
def test_the_form_refuses_what_is_not_a_code(code):
    from linking.forms import AddChildForm

    form = AddChildForm({"codes": code})
    assert not form.is_valid()
    assert "6 letters and digits" in form.errors["codes"][0]


def test_the_form_keeps_case_trims_and_warns_about_look_alikes():
    from linking.forms import AddChildForm

    form = AddChildForm({"codes": "  aB3xZ9 , Il10Ox\n aB3xZ9 "})
    assert form.is_valid()
    assert form.cleaned_data["codes"] == ["aB3xZ9", "Il10Ox"]
    assert form.look_alike_codes() == ["Il10Ox"]


# -- failure branches, driven step by step (the rows are saved without queueing) -----------------
def redeem_now(request: LinkRequest, canvas=None) -> LinkRequest:
    claimed = claim_link_request(str(request.pk), task_id="test")
    links.link_request_redeem(link_request=claimed, canvas=canvas or family_admin_client())
    request.refresh_from_db()
    return request


def family_admin_client():
    from linking.canvas import admin_client

    return admin_client(timeout=(2.0, 2.0), backoff_base=0.01, backoff_cap=0.05)


def test_a_student_who_registers_as_their_own_parent_gets_no_link_and_is_told_why(family):
    student = family.student()
    # The "parent" signed up with the student's own Canvas login: Canvas links nobody to themselves.
    parent = family.parent(email=student.canvas["login"])
    request = LinkRequest.objects.create(parent=parent, code=family.code_for(student))

    assert redeem_now(request).failure == LinkRequest.Failure.NO_LINK
    assert "signed in as yourself" in request.advice
    assert not ObservationLink.objects.exists()


def test_an_email_two_canvas_accounts_share_is_left_for_the_school(family):
    email = f"{family.sim.unique('shared')}@example.test"
    family.sim.make_user(login=family.sim.unique("one"), email=email)
    family.sim.make_user(login=family.sim.unique("two"), email=email)
    student, parent = family.student(), family.parent(email=email)
    request = LinkRequest.objects.create(parent=parent, code=family.code_for(student))

    assert redeem_now(request).failure == LinkRequest.Failure.AMBIGUOUS_ACCOUNT
    assert "school will review" in request.advice
    assert AuditEvent.objects.get(action="link_request.failed").outcome == "ambiguous_account"


def test_an_admin_token_without_rights_fails_the_request_for_review(family):
    from linking.canvas import CanvasClient

    student, parent = family.student(), family.parent()
    request = LinkRequest.objects.create(parent=parent, code=family.code_for(student))
    not_an_admin = CanvasClient(base_url=family.sim.base_url, token=family.sim.make_user()["token"])

    assert redeem_now(request, canvas=not_an_admin).failure == LinkRequest.Failure.NOT_AUTHORIZED


def test_after_a_day_of_outage_the_request_gives_up_and_says_so(family):
    from datetime import timedelta

    from django.utils import timezone

    student, parent = family.student(), family.parent()
    request = LinkRequest.objects.create(parent=parent, code=family.code_for(student))
    LinkRequest.objects.filter(pk=request.pk).update(created_at=timezone.now() - timedelta(hours=25))
    request.refresh_from_db()
    family.sim.configure(error_rate=1.0)

    assert redeem_now(request).failure == LinkRequest.Failure.CANVAS_UNAVAILABLE


def test_an_outage_within_the_day_asks_for_a_retry_and_records_nothing(family):
    student, parent = family.student(), family.parent()
    request = LinkRequest.objects.create(parent=parent, code=family.code_for(student))
    family.sim.configure(error_rate=1.0)

    with pytest.raises(links.RetryLater):
        redeem_now(request)
    assert not AuditEvent.objects.filter(action__startswith="link").exists()
