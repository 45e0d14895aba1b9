"""Pairing codes and observation links: create, link, show, list, unlink."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from linking.canvas import (
    CanvasClient,
    CanvasInvalidPairingCode,
    CanvasNoLinkCreated,
    CanvasNotFound,
    PairingCode,
)


def test_it_creates_a_pairing_code_with_the_students_own_token(make_client, student):
    code = make_client(student["token"]).create_pairing_code("self")

    assert isinstance(code, PairingCode)
    assert code.user_id == student["id"]
    assert len(code.code) == 6 and code.code.isalnum()
    assert code.workflow_state == "active"
    assert code.expires_at.tzinfo is not None
    assert abs(code.expires_at - (datetime.now(UTC) + timedelta(days=7))) < timedelta(minutes=5)
    assert code.code not in repr(code)


def test_it_creates_a_pairing_code_with_the_admin_token(admin, student):
    assert admin.create_pairing_code(student["id"]).user_id == student["id"]


def test_it_links_a_parent_with_a_pairing_code(admin, make_client, parent, student):
    code = make_client(student["token"]).create_pairing_code("self")

    linked = admin.link_with_pairing_code(parent["id"], f" {code.code} ")

    assert linked["id"] == student["id"]
    assert linked["observation_link_root_account_ids"] == [1]
    assert admin.show_observee(parent["id"], student["id"])["id"] == student["id"]
    assert admin.show_observer(student["id"], parent["id"])["id"] == parent["id"]
    assert [s["id"] for s in admin.list_observees(parent["id"])] == [student["id"]]
    assert [p["id"] for p in make_client(student["token"]).list_observers("self")] == [parent["id"]]


def test_a_parent_can_link_themselves_with_their_own_token(make_client, parent, student):
    code = make_client(student["token"]).create_pairing_code("self")
    as_parent = make_client(parent["token"])

    as_parent.link_with_pairing_code("self", code.code)

    assert as_parent.show_observee("self", student["id"])["id"] == student["id"]


def test_it_refuses_a_code_that_was_already_used(admin, make_client, canvas_sim, student):
    code = make_client(student["token"]).create_pairing_code("self")
    first, second = canvas_sim.make_user(), canvas_sim.make_user()
    admin.link_with_pairing_code(first["id"], code.code)

    with pytest.raises(CanvasInvalidPairingCode):
        admin.link_with_pairing_code(second["id"], code.code)

    assert admin.show_observee(second["id"], student["id"]) is None


def test_it_treats_pairing_codes_as_case_sensitive(admin, make_client, parent, student):
    codes = [make_client(student["token"]).create_pairing_code("self") for _ in range(3)]
    code = next(c.code for c in codes if c.code.swapcase() != c.code)  # one with a letter in it

    with pytest.raises(CanvasInvalidPairingCode):
        admin.link_with_pairing_code(parent["id"], code.swapcase())


def test_a_code_consumed_by_a_request_that_then_failed_is_gone(admin, make_client, parent, student):
    code = make_client(student["token"]).create_pairing_code("self")
    admin.request("DELETE", f"/api/v1/accounts/self/users/{student['id']}")

    with pytest.raises(CanvasNotFound):  # the code is found and burnt before the student is looked up
        admin.link_with_pairing_code(parent["id"], code.code)
    with pytest.raises(CanvasInvalidPairingCode):
        admin.link_with_pairing_code(parent["id"], code.code)


def test_it_reports_that_no_link_was_made_when_a_student_uses_their_own_code(admin, make_client, student):
    code = make_client(student["token"]).create_pairing_code("self")

    with pytest.raises(CanvasNoLinkCreated):
        admin.link_with_pairing_code(student["id"], code.code)
    with pytest.raises(CanvasInvalidPairingCode):  # and the code is spent all the same
        admin.link_with_pairing_code(student["id"], code.code)


def test_the_admin_link_is_idempotent(admin, parent, student):
    first = admin.link(parent["id"], student["id"])
    second = admin.link(parent["id"], student["id"])

    assert first == second
    assert first["observation_link_root_account_ids"] == [1]
    assert [p["id"] for p in admin.list_observers(student["id"])] == [parent["id"]]


def test_unlink_removes_the_link_and_show_then_returns_none(admin, parent, student):
    admin.link(parent["id"], student["id"])

    assert admin.unlink(parent["id"], student["id"]) is True

    assert admin.show_observee(parent["id"], student["id"]) is None
    assert admin.list_observees(parent["id"]) == []


def test_unlink_without_a_link_returns_false(admin, parent, student):
    assert admin.unlink(parent["id"], student["id"]) is False


def test_a_removed_link_can_be_made_again(admin, parent, student):
    admin.link(parent["id"], student["id"])
    admin.unlink(parent["id"], student["id"])

    admin.link(parent["id"], student["id"])

    assert admin.show_observee(parent["id"], student["id"])["id"] == student["id"]


def test_it_lists_every_child_of_a_parent(admin, canvas_sim, parent):
    children = [canvas_sim.make_user(student=True) for _ in range(3)]
    for child in children:
        admin.link(parent["id"], child["id"])

    assert {s["id"] for s in admin.list_observees(parent["id"])} == {c["id"] for c in children}


def test_it_tells_whether_a_student_is_enrolled(canvas_sim):
    enrolled = canvas_sim.make_user(student=True)
    newcomer = canvas_sim.make_user(student=False)
    admin = CanvasClient(base_url=canvas_sim.base_url, token=canvas_sim.admin_token)
    assert admin.has_student_enrollment(enrolled["id"]) is True
    assert admin.has_student_enrollment(newcomer["id"]) is False
    as_student = CanvasClient(base_url=canvas_sim.base_url, token=enrolled["token"])
    assert [e["type"] for e in as_student.list_enrollments("self")] == ["StudentEnrollment"]
