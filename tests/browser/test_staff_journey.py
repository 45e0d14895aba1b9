"""The staff member in Chromium: signs in with a password and the authenticator's code, approves a
request the policy held, watches the worker link it, then revokes the link with a reason."""

from __future__ import annotations

from playwright.sync_api import expect

from linking.models import LinkPolicy, LinkRequest, ObservationLink
from linking.services.links import link_requests_submit
from tests.browser.axe import assert_accessible
from tests.browser.journeys import path_is
from tests.staff.conftest import PASSWORD, staff_member_make, totp_code
from tests.workers import wait_for


def a_held_request(family) -> LinkRequest:
    """A parent's request for a real Canvas student, held by the school's "hold every request" policy."""
    policy = LinkPolicy.current()
    policy.mode = LinkPolicy.Mode.HOLD_ALL
    policy.save()
    student, parent = family.student(), family.parent(name="Lee Wong")
    [request] = link_requests_submit(parent=parent, codes=[family.code_for(student)]).created
    assert request.state == LinkRequest.State.HELD
    request.canvas_student = student.canvas
    return request


def test_a_staff_member_approves_a_held_request_then_revokes_the_link_with_a_reason(person, portal, family):
    held = a_held_request(family)
    staff = staff_member_make(f"{portal.sim.unique('staff')}@school.example", name="Sam Staff")
    page = person().page

    page.goto("/staff/")
    expect(page).to_have_url(path_is("/accounts/login/"))
    page.get_by_label("Email").fill(staff.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Two-Factor Authentication")
    page.get_by_role("textbox").fill(totp_code(staff))
    page.get_by_role("button", name="Sign In").click()
    expect(page).to_have_url(path_is("/staff/"))

    page.get_by_role("navigation", name="Staff console").get_by_role("link", name="Requests").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Link requests")
    row = page.get_by_role("row").filter(has_text="Lee Wong")
    expect(row).to_contain_text("Waiting for the school")
    row.get_by_role("link").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Link request from Lee Wong")
    expect(page.get_by_role("definition").filter(has_text="Every request is reviewed")).to_be_visible()
    assert_accessible(page)

    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("status")).to_contain_text("Approved: the portal is linking them now.")
    wait_for(
        lambda: LinkRequest.objects.filter(pk=held.pk, state=LinkRequest.State.LINKED).exists(),
        message="the worker to link the approved request",
    )
    page.reload()
    links = page.get_by_role("region", name="Observation links made by this request")
    expect(links.get_by_role("row").filter(has_text=held.canvas_student["name"])).to_contain_text("Linked")
    held.parent.refresh_from_db()
    canvas = portal.canvas_admin()
    assert [s["id"] for s in canvas.list_observees(held.parent.canvas_user_id)] == [held.canvas_student["id"]]
    assert_accessible(page)

    links.get_by_role("link", name="Revoke…").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Stop Lee Wong observing {held.canvas_student['name']}?")
    page.get_by_label("Reason").fill("A court order came in this morning.")
    page.get_by_role("button", name="Revoke the link").click()
    expect(page.get_by_role("status")).to_contain_text("We're removing the link in Canvas and telling the parent.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Link request from Lee Wong")
    wait_for(lambda: canvas.list_observees(held.parent.canvas_user_id) == [], message="Canvas to drop the link")
    link = ObservationLink.objects.get(link_request=held)
    assert link.remove_reason == "A court order came in this morning."
    page.reload()
    expect(links).to_contain_text("A court order came in this morning.")
    expect(links.get_by_role("link", name="Revoke…")).to_have_count(0)
