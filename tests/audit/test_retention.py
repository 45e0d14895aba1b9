"""Retention: personal data of link requests closed long ago is blanked; the chain still verifies."""

from contextlib import contextmanager
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from linking.audit.models import AuditEvent
from linking.audit.services import audit_event_record, audit_personal_data_anonymise
from linking.models import LinkPolicy, LinkRequest, Parent
from linking.tasks import audit_retention_apply

from .tampering import tamper

State = LinkRequest.State


@contextmanager
def days_ago(days: int):
    """The clock set back ``days`` days, for events that must have been recorded then."""
    then = timezone.now() - timedelta(days=days)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(timezone, "now", lambda: then)
        yield then


@pytest.fixture
def parent(db):
    user = get_user_model().objects.create_user(username="maria", email="maria@example.com")
    return Parent.objects.create(user=user, name="Maria Garcia")


@pytest.fixture
def link_request(parent):
    """A request in ``state``, closed ``closed_days_ago`` days ago (None: still open), with events
    recorded ``recorded_days_ago`` days ago."""

    def make(state: str, *, closed_days_ago: int | None = None, recorded_days_ago: int = 40) -> LinkRequest:
        request = LinkRequest.objects.create(parent=parent, state=state)
        if closed_days_ago is not None:
            request.finished_at = timezone.now() - timedelta(days=closed_days_ago)
            request.save(update_fields=["finished_at"])
        with days_ago(recorded_days_ago), transaction.atomic():
            for action in ("link_request.submitted", "link.created"):
                audit_event_record(
                    action=action,
                    actor=parent.user,
                    actor_label="parent",
                    subject={"link_request": str(request.pk), "parent": parent.pk},
                    personal={"parent_name": parent.name, "email": parent.email},
                )
        return request

    return make


def personal_of(request: LinkRequest) -> list[dict]:
    return list(
        AuditEvent.objects.filter(subject__link_request=str(request.pk))
        .order_by("id")
        .values_list("personal", flat=True)
    )


def verify_audit() -> str:
    out = StringIO()
    call_command("verify_audit", stdout=out)
    return out.getvalue().splitlines(keepends=True)[0]  # the second line names the head


def test_it_blanks_personal_data_of_requests_closed_long_ago(link_request):
    linked = link_request(State.LINKED, closed_days_ago=35)
    failed = link_request(State.FAILED, closed_days_ago=31)
    rejected = link_request(State.REJECTED, closed_days_ago=60, recorded_days_ago=61)
    digests = dict(AuditEvent.objects.values_list("id", "personal_digest"))
    hashes = dict(AuditEvent.objects.values_list("id", "hash"))

    assert audit_personal_data_anonymise(older_than_days=30) == 6

    for request in (linked, failed, rejected):
        assert personal_of(request) == [{}, {}]
    assert dict(AuditEvent.objects.exclude(action="audit.anonymised").values_list("id", "personal_digest")) == digests
    assert dict(AuditEvent.objects.exclude(action="audit.anonymised").values_list("id", "hash")) == hashes


def test_it_leaves_open_and_recently_closed_requests_alone(link_request):
    waiting = link_request(State.WAITING)
    held = link_request(State.HELD)
    closed_recently = link_request(State.LINKED, closed_days_ago=5)
    closed_long_ago_recorded_recently = link_request(State.LINKED, closed_days_ago=40, recorded_days_ago=2)

    assert audit_personal_data_anonymise(older_than_days=30) == 0

    for request in (waiting, held, closed_recently, closed_long_ago_recorded_recently):
        assert [personal["parent_name"] for personal in personal_of(request)] == ["Maria Garcia"] * 2


def test_it_leaves_events_without_a_link_request_alone(link_request, record_events):
    link_request(State.LINKED, closed_days_ago=35)
    with days_ago(40):
        [other] = record_events(1, subject={"parent": 1})

    assert audit_personal_data_anonymise(older_than_days=30) == 2
    assert AuditEvent.objects.get(pk=other.pk).personal == other.personal


def test_it_records_how_many_events_it_anonymised(link_request):
    link_request(State.LINKED, closed_days_ago=35)
    audit_personal_data_anonymise(older_than_days=30)
    audit_personal_data_anonymise(older_than_days=30)

    runs = AuditEvent.objects.filter(action="audit.anonymised").order_by("id")
    assert [(run.actor_label, run.data) for run in runs] == [
        ("system", {"count": 2, "older_than_days": 30}),
        ("system", {"count": 0, "older_than_days": 30}),
    ]


def test_the_chain_still_verifies_after_anonymisation(link_request):
    link_request(State.LINKED, closed_days_ago=35)
    link_request(State.WAITING)
    audit_personal_data_anonymise(older_than_days=30)

    assert verify_audit() == "Audit chain OK: 5 events\n"
    assert AuditEvent.objects.filter(action="audit.verified").get().data["anonymised"] == 2


def test_verify_still_notices_personal_data_put_back_after_anonymisation(link_request):
    request = link_request(State.LINKED, closed_days_ago=35)
    audit_personal_data_anonymise(older_than_days=30)
    first = AuditEvent.objects.filter(subject__link_request=str(request.pk)).order_by("id").first()
    tamper("UPDATE audit_auditevent SET personal = %s WHERE id = %s", ['{"parent_name": "Someone Else"}', first.pk])

    from django.core.management import CommandError

    with pytest.raises(CommandError, match=f"BROKEN at event {first.pk}: its personal data"):
        verify_audit()


def test_it_refuses_a_negative_retention(db):
    with pytest.raises(ValueError, match="0 or more"):
        audit_personal_data_anonymise(older_than_days=-1)


def test_the_nightly_task_keeps_everything_when_no_retention_is_set(link_request):
    request = link_request(State.LINKED, closed_days_ago=400)
    LinkPolicy.current()

    assert audit_retention_apply() == 0
    assert personal_of(request)[0]["parent_name"] == "Maria Garcia"
    assert not AuditEvent.objects.filter(action="audit.anonymised").exists()


def test_the_nightly_task_applies_the_policys_retention(link_request):
    old = link_request(State.LINKED, closed_days_ago=35)
    recent = link_request(State.LINKED, closed_days_ago=10, recorded_days_ago=12)
    policy = LinkPolicy.current()
    policy.retention_days = 30
    policy.save(update_fields=["retention_days"])

    assert audit_retention_apply() == 2
    assert personal_of(old) == [{}, {}]
    assert personal_of(recent)[0]["parent_name"] == "Maria Garcia"
