"""The keyboard alone: the student's invite and the parent's "Add a child", with Tab, Shift+Tab, Enter
and Space only, each from the top of the page through its skip link, checking where focus is at
every step."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.journeys import (
    a_canvas_student,
    a_parent,
    code_made_in_canvas,
    linked_in_canvas,
    path_is,
    signed_in,
    the_code,
)

FOCUSED = """() => {
  const element = document.activeElement;
  const label = element.labels && element.labels.length ? element.labels[0] : element;
  return label.textContent.replace(/\\s+/g, " ").trim();
}"""


def focused(page: Page) -> str:
    """What a screen reader would name the focused element: its label, or its text."""
    return page.evaluate(FOCUSED)


def presses(page: Page, key: str, lands_on: str) -> None:
    page.keyboard.press(key)
    assert focused(page) == lands_on, f"{key} moved focus to {focused(page)!r}, not {lands_on!r}"


def skips_to_main_content(page: Page) -> None:
    """From the top of a freshly loaded page: the first Tab reaches the skip link, which is then shown."""
    page.wait_for_load_state()
    presses(page, "Tab", "Skip to main content")
    expect(page.get_by_role("link", name="Skip to main content")).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()


def test_a_student_invites_a_parent_with_the_keyboard_alone(person, portal, family):
    student = family.student()
    someone = person()
    signed_in(someone, portal, student.user)
    page = someone.page
    page.goto("/student/")

    skips_to_main_content(page)
    presses(page, "Tab", "Invite a parent")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/student/codes/[0-9a-f-]{36}/$"))
    code = the_code(page)

    skips_to_main_content(page)
    presses(page, "Tab", "← Back to my codes")
    presses(page, "Tab", "Copy the code")
    page.keyboard.press("Space")
    expect(page.get_by_role("button", name="Copied!")).to_be_focused()
    assert page.evaluate("() => navigator.clipboard.readText()") == code
    presses(page, "Tab", "Printable card")
    presses(page, "Tab", "Your parent's email address")
    page.keyboard.type("pat.parent@example.test")
    presses(page, "Shift+Tab", "Printable card")
    presses(page, "Tab", "Your parent's email address")
    presses(page, "Tab", "Send the code")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("We're emailing the code to pat.parent@example.test.")

    skips_to_main_content(page)
    presses(page, "Tab", "← Back to my codes")
    presses(page, "Tab", "Copy the code")
    presses(page, "Tab", "Printable card")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Link to your child in Canvas")
    skips_to_main_content(page)
    presses(page, "Tab", "Print this card")
    presses(page, "Tab", "Back")


def test_a_parent_adds_a_child_with_the_keyboard_alone(person, portal):
    child = a_canvas_student(portal)
    code = code_made_in_canvas(portal, child)
    parent = a_parent(f"{portal.sim.unique('parent')}@example.test")
    someone = person()
    signed_in(someone, portal, parent.user)
    page = someone.page
    page.goto("/family/")

    skips_to_main_content(page)
    presses(page, "Tab", "Add a child")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Add a child")

    skips_to_main_content(page)
    presses(page, "Tab", "Pairing code")
    page.keyboard.type(code)
    presses(page, "Tab", "Link")
    presses(page, "Shift+Tab", "Pairing code")
    expect(page.get_by_label("Pairing code")).to_have_value(code)
    page.keyboard.press("Enter")

    expect(page).to_have_url(path_is("/family/"))
    expect(page.get_by_role("link", name="Remove this link")).to_be_visible()
    expect(page.get_by_role("listitem").filter(has_text=child["name"])).to_be_visible()
    # The form went from /family/add/#main (the skip link's doing) and the redirect keeps the fragment:
    # the dashboard opens at its main content, and Tab starts there.
    expect(page).to_have_url(re.compile(r"/family/#main$"))
    presses(page, "Tab", "Add a child")
    presses(page, "Tab", "Remove this link")
    assert linked_in_canvas(portal, parent) == [child["id"]]
