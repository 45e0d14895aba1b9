import hashlib
import json
import uuid

import pytest
from django.db import transaction

from linking.audit.models import AuditEvent
from linking.audit.services import GENESIS, audit_chain_verify, audit_event_record, event_hash


def canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def test_it_starts_the_chain_at_genesis(record_events):
    [first] = record_events(1)
    assert first.prev_hash == GENESIS
    assert len(first.hash) == 64


def test_it_chains_each_event_to_the_one_before(record_events):
    first, second, third = record_events(3)
    assert second.prev_hash == first.hash
    assert third.prev_hash == second.hash
    assert first.id < second.id < third.id


def test_it_hashes_what_the_database_gives_back(record_events):
    [recorded] = record_events(1, subject={"link_request": uuid.uuid4(), "parent": 3})
    stored = AuditEvent.objects.get(pk=recorded.pk)
    assert isinstance(stored.subject["link_request"], str)
    assert event_hash(stored) == stored.hash == recorded.hash
    assert stored.created_at == recorded.created_at


def test_it_refuses_to_record_outside_a_transaction(transactional_db):
    with pytest.raises(RuntimeError, match="inside the transaction.atomic"):
        audit_event_record(action="link.created", actor_label="system", subject={"parent": 1})
    assert not AuditEvent.objects.exists()


def test_it_records_the_actor_as_a_plain_id_that_outlives_the_user(staff_user):
    with transaction.atomic():
        event = audit_event_record(action="link.removed", actor=staff_user, actor_label="staff", subject={"link": 4})
    staff_id = staff_user.pk
    staff_user.delete()
    stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.actor_id, stored.actor_label) == (staff_id, "staff")
    assert audit_chain_verify().ok


def test_it_keeps_personal_data_behind_a_salted_digest_so_it_can_be_blanked_later(record_events):
    [event] = record_events(1, personal={"parent_name": "Ann Example"})
    assert event.personal["parent_name"] == "Ann Example"
    assert len(event.personal["_salt"]) == 32
    assert event.personal_digest == hashlib.sha256(canonical(event.personal).encode()).hexdigest()
    # A guess at the name without the salt does not reproduce the digest.
    assert event.personal_digest != hashlib.sha256(canonical({"parent_name": "Ann Example"}).encode()).hexdigest()
    event.personal = {}
    assert event_hash(event) == event.hash


def test_it_stores_no_salt_when_there_is_no_personal_data(record_events):
    [event] = record_events(1, personal=None)
    assert event.personal == {}


@pytest.mark.parametrize(
    "fields",
    [
        {"data": {"token": "abc"}},
        {"data": {"link": {"pairing_code": "ABC123"}}},
        {"data": {"Access_Token": "abc"}},
        {"data": {"canvas_refresh_token": "abc"}},
        {"data": {"note": "Authorization: Bearer 7~abcdef"}},
        {"data": {"steps": [{"password": "hunter2"}]}},
        {"subject": {"code": "ABC123"}},
        {"personal": {"password": "hunter2"}},
        {"canvas_calls": [{"method": "GET", "path": "/login/oauth2/token?code=xyz", "status": 200}]},
        {"canvas_calls": [{"method": "POST", "path": "/api/v1/users/1/observees", "pairing_code": "ABC"}]},
    ],
)
def test_it_refuses_anything_that_looks_like_a_secret(record_events, fields):
    with pytest.raises(ValueError, match="secret|canvas_calls"):
        record_events(1, **fields)
    assert not AuditEvent.objects.exists()


def test_it_accepts_a_redacted_canvas_path(record_events):
    path = "/login/oauth2/token?code=[redacted]"
    [event] = record_events(1, canvas_calls=[{"method": "POST", "path": path, "status": 200, "outcome": "ok"}])
    assert event.canvas_calls[0]["path"] == path


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"data": {"ratio": 0.5}}, "float"),
        ({"subject": {"parent": {"name": "Ann"}}}, "must be an id"),
        ({"action": "Link Created"}, "action"),
        ({"outcome": "not ok"}, "outcome"),
        ({"actor_label": "robot"}, "actor_label"),
        ({"personal": {"_salt": "mine"}}, "reserved"),
    ],
)
def test_it_refuses_malformed_fields(record_events, fields, message):
    with pytest.raises(ValueError, match=message):
        record_events(1, **fields)


def test_it_leaves_no_event_when_the_change_rolls_back(record_events):
    record_events(1)
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        audit_event_record(action="link.created", actor_label="system", subject={"parent": 1})
        1 / 0  # noqa: B018 - the change fails after its event was recorded
    assert AuditEvent.objects.count() == 1
    assert audit_chain_verify().ok
