import pytest
from django.db import IntegrityError, connection, transaction

from linking.audit.models import AppendOnlyError, AuditEvent


def test_it_refuses_a_queryset_update(record_events):
    record_events(1)
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.update(outcome="failed")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(action="link.created").update(outcome="failed")


def test_it_refuses_a_queryset_delete(record_events):
    record_events(1)
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.count() == 1


def test_it_refuses_saving_an_existing_event(record_events):
    [event] = record_events(1)
    event.outcome = "failed"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.get(pk=event.pk).save(update_fields=["outcome"])
    assert AuditEvent.objects.get(pk=event.pk).outcome == "ok"


def test_it_refuses_deleting_an_event(record_events):
    [event] = record_events(1)
    with pytest.raises(AppendOnlyError):
        event.delete()
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_it_refuses_bulk_writes_that_would_skip_the_chain(record_events):
    [event] = record_events(1)
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.bulk_create([AuditEvent(action="link.created")])
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.bulk_update([event], ["outcome"])


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditevent SET outcome = 'failed'",
        "UPDATE audit_auditevent SET personal = '{}'",
        "DELETE FROM audit_auditevent",
        "DELETE FROM audit_auditevent WHERE id = (SELECT MAX(id) FROM audit_auditevent)",
    ],
)
def test_the_database_refuses_raw_updates_and_deletes(record_events, sql):
    record_events(2)
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)
    assert list(AuditEvent.objects.values_list("outcome", flat=True)) == ["ok", "ok"]


def test_postgresql_refuses_to_truncate_the_log(postgres, record_events):
    record_events(1)
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("TRUNCATE audit_auditevent")
    assert AuditEvent.objects.count() == 1
