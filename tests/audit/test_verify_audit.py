import pytest
from django.core.management import CommandError, call_command

from linking.audit.models import AuditEvent
from linking.audit.services import VerifyResult, audit_chain_verify, event_hash

from .tampering import tamper


def verify_audit() -> str:
    """The command's first line (the second names the head, tested in tests/security/test_audit_anchors.py)."""
    from io import StringIO

    out = StringIO()
    call_command("verify_audit", stdout=out)
    return out.getvalue().splitlines(keepends=True)[0]


def broken_at(event_id: int, reason: str):
    return pytest.raises(CommandError, match=rf"^Audit chain BROKEN at event {event_id}: .*{reason}")


def test_it_passes_an_empty_log(db):
    assert verify_audit() == "Audit chain OK: 0 events\n"


def test_it_passes_a_good_chain(record_events):
    record_events(5)
    assert verify_audit() == "Audit chain OK: 5 events\n"


def test_it_names_an_event_whose_field_was_edited(record_events):
    events = record_events(4)
    tamper("UPDATE audit_auditevent SET outcome = 'failed' WHERE id = %s", [events[2].pk])
    with broken_at(events[2].pk, "do not match its hash"):
        verify_audit()


def test_it_names_an_event_whose_subject_was_edited(record_events):
    events = record_events(3)
    tamper("UPDATE audit_auditevent SET subject = %s WHERE id = %s", ['{"parent": 99}', events[0].pk])
    with broken_at(events[0].pk, "do not match its hash"):
        verify_audit()


def test_it_names_an_event_whose_hash_was_edited(record_events):
    events = record_events(3)
    tamper("UPDATE audit_auditevent SET hash = %s WHERE id = %s", ["f" * 64, events[1].pk])
    with broken_at(events[1].pk, "do not match its hash"):
        verify_audit()


def test_it_names_the_next_event_when_an_edit_came_with_a_recomputed_hash(record_events):
    events = record_events(3)
    forged = AuditEvent.objects.get(pk=events[1].pk)
    forged.outcome = "failed"
    tamper(
        "UPDATE audit_auditevent SET outcome = %s, hash = %s WHERE id = %s",
        ["failed", event_hash(forged), forged.pk],
    )
    with broken_at(events[2].pk, "does not follow event"):
        verify_audit()


def test_it_names_an_event_whose_personal_data_was_edited(record_events):
    events = record_events(2)
    tamper("UPDATE audit_auditevent SET personal = %s WHERE id = %s", ['{"parent_name": "Mallory"}', events[1].pk])
    with broken_at(events[1].pk, "personal data does not match"):
        verify_audit()


def test_it_names_the_event_after_a_deleted_one(record_events):
    events = record_events(4)
    tamper("DELETE FROM audit_auditevent WHERE id = %s", [events[1].pk])
    with broken_at(events[2].pk, f"does not follow event {events[0].pk}"):
        verify_audit()


def test_it_notices_that_the_first_event_was_deleted(record_events):
    events = record_events(3)
    tamper("DELETE FROM audit_auditevent WHERE id = %s", [events[0].pk])
    with broken_at(events[1].pk, "does not follow the start of the chain"):
        verify_audit()


def test_it_names_the_first_of_two_reordered_events(record_events):
    events = record_events(4)
    a, b = events[1].pk, events[2].pk
    tamper(
        "UPDATE audit_auditevent SET id = CASE WHEN id = %s THEN %s ELSE %s END WHERE id IN (%s, %s)",
        [a, -a, -b, a, b],
    )
    tamper("UPDATE audit_auditevent SET id = %s WHERE id = %s", [b, -a])
    tamper("UPDATE audit_auditevent SET id = %s WHERE id = %s", [a, -b])
    assert AuditEvent.objects.get(pk=a).hash == events[2].hash
    with broken_at(a, "does not follow event"):
        verify_audit()


def test_it_reports_how_far_it_got(record_events):
    events = record_events(5)
    tamper("UPDATE audit_auditevent SET action = 'link.removed' WHERE id = %s", [events[3].pk])
    result = audit_chain_verify()
    assert (result.ok, result.checked, result.first_broken_id) == (False, 4, events[3].pk)


def test_it_passes_a_chain_with_anonymised_events(record_events):
    events = record_events(3)
    AuditEvent.objects.filter(pk=events[1].pk).anonymise()
    assert audit_chain_verify() == VerifyResult(ok=True, checked=3, anonymised=1)
    assert verify_audit() == "Audit chain OK: 3 events\n"


def test_it_still_names_personal_data_edited_after_anonymisation(record_events):
    events = record_events(3)
    AuditEvent.objects.filter(pk=events[1].pk).anonymise()
    tamper("UPDATE audit_auditevent SET personal = %s WHERE id = %s", ['{"parent_name": "Mallory"}', events[1].pk])
    with broken_at(events[1].pk, "personal data does not match"):
        verify_audit()


def test_it_names_an_event_whose_personal_data_was_added_where_there_was_none(record_events):
    [event] = record_events(1, personal=None)
    tamper("UPDATE audit_auditevent SET personal = %s WHERE id = %s", ['{"parent_name": "Mallory"}', event.pk])
    with broken_at(event.pk, "personal data does not match"):
        verify_audit()


def test_it_records_each_check_as_an_event(record_events):
    record_events(2)
    verify_audit()
    check = AuditEvent.objects.get(action="audit.verified")
    assert (check.actor_label, check.outcome) == ("system", "ok")
    assert check.data == {"checked": 2, "first_broken_id": None, "reason": "", "anonymised": 0}


def test_it_records_a_broken_check_with_the_first_broken_event(record_events):
    events = record_events(3)
    tamper("UPDATE audit_auditevent SET outcome = 'failed' WHERE id = %s", [events[1].pk])
    with broken_at(events[1].pk, "do not match its hash"):
        verify_audit()
    check = AuditEvent.objects.get(action="audit.verified")
    assert check.outcome == "broken"
    assert (check.data["checked"], check.data["first_broken_id"]) == (2, events[1].pk)
