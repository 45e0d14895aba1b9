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
        "UPDATE audit_auditevent SET action = 'link.removed'",
        """UPDATE audit_auditevent SET personal = '{"parent_name": "Mallory"}'""",
        "UPDATE audit_auditevent SET personal = '[]'",
        "UPDATE audit_auditevent SET personal = 'null'",
        # Blanking personal is allowed only on its own.
        "UPDATE audit_auditevent SET personal = '{}', outcome = 'failed'",
        "UPDATE audit_auditevent SET personal = '{}', personal_digest = hash",
        "UPDATE audit_auditevent SET personal = '{}', data = '{}'",
        "UPDATE audit_auditevent SET personal = '{}', id = id + 1000",
        "DELETE FROM audit_auditevent",
        "DELETE FROM audit_auditevent WHERE id = (SELECT MAX(id) FROM audit_auditevent)",
    ],
)
def test_the_database_refuses_raw_updates_and_deletes(record_events, sql):
    record_events(2)
    before = list(AuditEvent.objects.values_list("id", "action", "outcome", "data", "personal", "personal_digest"))
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)
    after = list(AuditEvent.objects.values_list("id", "action", "outcome", "data", "personal", "personal_digest"))
    assert after == before


def test_the_database_allows_blanking_personal_data_and_nothing_else(record_events):
    events = record_events(2)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET personal = '{}' WHERE id = %s", [events[0].pk])
    blanked, kept = AuditEvent.objects.order_by("id")
    assert blanked.personal == {} and blanked.personal_digest == events[0].personal_digest
    assert blanked.hash == events[0].hash
    assert kept.personal == events[1].personal


def test_the_orm_blanks_personal_data_only_through_anonymise(record_events):
    events = record_events(3)
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.update(personal={})
    event = AuditEvent.objects.get(pk=events[0].pk)
    event.personal = {}
    with pytest.raises(AppendOnlyError):
        event.save(update_fields=["personal"])

    assert AuditEvent.objects.filter(pk__in=[events[0].pk, events[1].pk]).anonymise() == 2
    assert AuditEvent.objects.filter(pk__in=[events[0].pk, events[1].pk]).anonymise() == 0
    assert list(AuditEvent.objects.order_by("id").values_list("personal", flat=True)) == [{}, {}, events[2].personal]


def test_the_sqlite_trigger_keeps_every_column_but_personal():
    from importlib import import_module

    migration = import_module("linking.audit.migrations.0003_allow_anonymising_personal")
    columns = {field.column for field in AuditEvent._meta.concrete_fields}
    assert set(migration.SQLITE_UNCHANGED_COLUMNS) == columns - {"personal"}


def test_postgresql_refuses_to_truncate_the_log(postgres, record_events):
    record_events(1)
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("TRUNCATE audit_auditevent")
    assert AuditEvent.objects.count() == 1
