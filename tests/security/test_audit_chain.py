"""The audit chain detects an edited event, a deleted event in the middle, and a deleted newest event.

The chain alone catches edits and deletions inside it. Deleting the newest events, or rewriting the
chain with fresh hashes, leaves a chain that verifies: only a copy of an event's id and hash kept outside
the database (an anchor: printed by ``verify_audit``, written nightly to ``AUDIT_ANCHOR_FILE``) shows
it. Tampering goes round the append-only triggers as an intruder with database access would
(tests/audit/tampering.py).
"""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from linking.audit.models import AuditEvent
from linking.audit.services import (
    Anchor,
    audit_anchors_read,
    audit_chain_check,
    audit_chain_head,
    audit_chain_verify,
    event_hash,
)
from linking.tasks import audit_anchor_write
from tests.audit.tampering import tamper


def verify_audit(*args: str) -> list[str]:
    out = StringIO()
    call_command("verify_audit", *args, stdout=out)
    return out.getvalue().splitlines()


def broken_at(event_id: int, reason: str):
    return pytest.raises(CommandError, match=rf"^Audit chain BROKEN at event {event_id}: .*{reason}")


def rewrite_chain_from(event_id: int) -> None:
    """Recompute prev_hash and hash of every event from ``event_id`` on, as someone hiding a change would."""
    previous = AuditEvent.objects.filter(id__lt=event_id).order_by("-id").values_list("hash", flat=True).first()
    for event in AuditEvent.objects.filter(id__gte=event_id).order_by("id"):
        event.prev_hash = previous or "0" * 64
        event.hash = event_hash(event)
        tamper(
            "UPDATE audit_auditevent SET prev_hash = %s, hash = %s WHERE id = %s",
            [event.prev_hash, event.hash, event.pk],
        )
        previous = event.hash


# -- what the chain catches on its own ------------------------------------------------------------
def test_an_edited_event_is_named(record_events):
    events = record_events(4)
    tamper("UPDATE audit_auditevent SET outcome = 'refused' WHERE id = %s", [events[1].pk])

    with broken_at(events[1].pk, "do not match its hash"):
        verify_audit()


def test_a_deleted_event_in_the_middle_is_noticed_at_the_next_one(record_events):
    events = record_events(4)
    tamper("DELETE FROM audit_auditevent WHERE id = %s", [events[2].pk])

    with broken_at(events[3].pk, f"does not follow event {events[1].pk}"):
        verify_audit()


# -- what takes an anchor -------------------------------------------------------------------------
def test_it_prints_the_head_to_keep_as_an_anchor_which_is_its_own_check(record_events):
    record_events(3)

    first, head = verify_audit()

    assert first == "Audit chain OK: 3 events"
    newest = AuditEvent.objects.order_by("-id").first()
    assert newest.action == "audit.verified"
    assert head == f"Head: {newest.pk}:{newest.hash}"


def test_a_deleted_newest_event_verifies_without_its_anchor_and_fails_with_it(record_events):
    record_events(3)
    _, head = verify_audit()
    anchor = head.removeprefix("Head: ")
    newest = int(anchor.split(":")[0])

    tamper("DELETE FROM audit_auditevent WHERE id = %s", [newest])

    assert audit_chain_verify().ok, "the chain alone cannot see this; if it can now, update the docs"
    with broken_at(newest, "the newest events were deleted"):
        verify_audit("--anchor", anchor)


def test_the_newest_events_deleted_after_further_events_are_still_caught(record_events):
    events = record_events(3)
    anchor = str(audit_chain_head())
    record_events(2)
    tamper("DELETE FROM audit_auditevent WHERE id >= %s", [events[2].pk])

    with broken_at(events[2].pk, f"the log ends at event {events[1].pk}"):
        verify_audit("--anchor", anchor)


def test_an_emptied_log_fails_its_anchor(record_events):
    record_events(2)
    anchor = str(audit_chain_head())
    tamper("DELETE FROM audit_auditevent")

    with pytest.raises(CommandError, match="the log ends at no event at all"):
        verify_audit("--anchor", anchor)


def test_a_chain_rewritten_with_fresh_hashes_verifies_without_its_anchor_and_fails_with_it(record_events):
    events = record_events(4)
    anchor = str(audit_chain_head())
    tamper("UPDATE audit_auditevent SET outcome = 'refused' WHERE id = %s", [events[1].pk])
    rewrite_chain_from(events[1].pk)

    assert audit_chain_verify().ok
    with broken_at(events[3].pk, "differs from the anchor"):
        verify_audit("--anchor", anchor)


def test_an_anchored_event_deleted_from_the_middle_of_a_rebuilt_chain_is_missing(record_events):
    events = record_events(4)
    anchors = [f"{event.pk}:{event.hash}" for event in events[1:3]]
    tamper("DELETE FROM audit_auditevent WHERE id = %s", [events[1].pk])
    rewrite_chain_from(events[2].pk)

    assert audit_chain_verify().ok
    with broken_at(events[1].pk, f"anchored event {events[1].pk} is missing"):
        verify_audit("--anchor", anchors[0])


def test_an_intact_chain_matches_every_anchor(record_events):
    events = record_events(4)

    lines = verify_audit(*(arg for event in events for arg in ("--anchor", f"{event.pk}:{event.hash}")))

    assert lines[0] == "Audit chain OK: 4 events; 4 anchors match"
    assert AuditEvent.objects.order_by("-id").first().data["anchors"] == 4


def test_a_malformed_anchor_is_refused_rather_than_ignored(db):
    with pytest.raises(CommandError, match="an anchor is SEQ:HASH"):
        verify_audit("--anchor", "12:not-a-hash")


# -- the nightly anchor ---------------------------------------------------------------------------
def test_the_nightly_task_logs_the_head_and_appends_it_to_the_anchor_file(record_events, settings, tmp_path, caplog):
    settings.AUDIT_ANCHOR_FILE = str(tmp_path / "audit-anchors.txt")
    record_events(2)
    first = audit_anchor_write()
    record_events(1)
    second = audit_anchor_write()

    assert audit_anchors_read(settings.AUDIT_ANCHOR_FILE) == [Anchor.parse(first), Anchor.parse(second)]
    assert f"audit anchor {second}" in caplog.text
    assert verify_audit()[0] == "Audit chain OK: 3 events; 2 anchors match"


def test_verify_audit_and_the_staff_check_read_the_anchor_file(record_events, settings, tmp_path):
    settings.AUDIT_ANCHOR_FILE = str(tmp_path / "audit-anchors.txt")
    events = record_events(3)
    audit_anchor_write()
    tamper("DELETE FROM audit_auditevent WHERE id = %s", [events[2].pk])

    with broken_at(events[2].pk, "the newest events were deleted"):
        verify_audit()
    result = audit_chain_check(actor_label="staff")
    assert (result.ok, result.first_broken_id) == (False, events[2].pk)


def test_a_garbled_anchor_file_fails_the_check(record_events, settings, tmp_path):
    anchors = tmp_path / "audit-anchors.txt"
    anchors.write_text("2025-01-01T03:45:00+00:00 7:deadbeef\n")
    settings.AUDIT_ANCHOR_FILE = str(anchors)
    record_events(1)

    with pytest.raises(CommandError, match="Cannot read the anchors"):
        verify_audit()


def test_no_anchor_file_yet_means_no_anchors(record_events, settings, tmp_path):
    settings.AUDIT_ANCHOR_FILE = str(tmp_path / "not-written-yet.txt")
    record_events(1)

    assert verify_audit()[0] == "Audit chain OK: 1 events"
