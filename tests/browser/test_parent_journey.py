"""The parent in Chromium: registers, confirms the emailed code, enters a child's code and watches the
dashboard go from "being linked" to linked by itself; and what a mistyped code looks like."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from linking.models import LinkRequest, Parent
from tests.browser.axe import assert_accessible
from tests.browser.journeys import (
    a_canvas_student,
    a_parent,
    code_made_in_canvas,
    is_the_same_page,
    linked_in_canvas,
    marks_the_page,
    path_is,
    registers_as_a_parent,
    signed_in,
)


def test_a_parent_registers_enters_a_code_and_sees_the_link_arrive_by_itself(person, portal):
    child = a_canvas_student(portal)
    code = code_made_in_canvas(portal, child)
    email = f"{portal.sim.unique('parent')}@example.test"
    page = person().page

    page.goto("/")
    page.get_by_role("main").get_by_role("link", name="Create a parent account").click()
    registers_as_a_parent(page, name="Maria Garcia", email=email)
    expect(page.get_by_role("status")).to_contain_text(f"You have confirmed {email}.")
    expect(page.get_by_role("heading", level=1)).to_have_text("My children")
    page.get_by_role("link", name="Add a child").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Add a child")
    page.get_by_label("Pairing code").fill(code)
    # Canvas answers slowly, so the dashboard is seen while the worker is still linking.
    portal.sim.configure(latency_ms=400)
    try:
        page.get_by_role("button", name="Link").click()
        expect(page).to_have_url(path_is("/family/"))
        expect(page.get_by_role("status")).to_contain_text("Got it: we're linking you now.")
        being_linked = page.get_by_role("heading", name="Being linked")
        expect(being_linked).to_be_visible()
        marks_the_page(page)

        expect(page.get_by_role("heading", name="Linked children")).to_be_visible()
        expect(page.get_by_role("listitem").filter(has_text=child["name"])).to_be_visible()
    finally:
        portal.sim.configure(latency_ms=0)
    expect(being_linked).to_have_count(0)
    expect(page.get_by_role("link", name="Remove this link")).to_be_visible()
    assert is_the_same_page(page), "the dashboard was reloaded, not updated in place"
    assert_accessible(page)

    maria = Parent.objects.get(user__email=email)
    assert maria.name == "Maria Garcia"
    assert linked_in_canvas(portal, maria) == [child["id"]]


def test_a_mistyped_code_is_explained_next_to_the_field_and_kept(person, portal):
    parent = a_parent(f"{portal.sim.unique('parent')}@example.test")
    someone = person()
    signed_in(someone, portal, parent.user)
    page = someone.page
    page.goto("/family/add/")

    field = page.get_by_label("Pairing code")
    field.fill("aB3xZ")
    page.get_by_role("button", name="Link").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Add a child")
    said = "“aB3xZ” is not a pairing code: codes are 6 letters and digits, like aB3xZ9."
    expect(field).to_have_value("aB3xZ")
    expect(field).to_have_attribute("aria-invalid", "true")
    # Shown in the field's own box, and read out with the field.
    expect(page.locator(".field", has=field).locator(".errorlist")).to_have_text(said)
    expect(field).to_have_accessible_description(re.compile(re.escape(said)))
    assert_accessible(page)
    assert not LinkRequest.objects.filter(parent=parent).exists()

    # Six characters, but not a code Canvas made: the dashboard says so and what to do next.
    field.fill("zzZZ99")
    page.get_by_role("button", name="Link").click()
    expect(page).to_have_url(path_is("/family/"))
    failed = page.get_by_role("listitem").filter(has_text="Not linked")
    expect(failed).to_contain_text("Ask your child to make a new code")
    expect(page.get_by_role("heading", name="Codes that didn't work")).to_be_visible()
    assert_accessible(page)
