"""The student in Chromium: signs in with Canvas, invites a parent, and hands the code over every way
the page offers (copy, email, printable card)."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.axe import assert_accessible
from tests.browser.journeys import (
    a_canvas_student,
    is_the_same_page,
    marks_the_page,
    path_is,
    signs_in_with_canvas,
    the_code,
)


def test_a_student_invites_a_parent_and_hands_the_code_over_every_way(person, portal):
    canvas_user = a_canvas_student(portal)
    page = person().page
    parent_email = f"{portal.sim.unique('parent')}@example.test"

    signs_in_with_canvas(page, portal, canvas_user)
    # Canvas answers slowly, so the page is seen waiting for the worker before the code arrives.
    portal.sim.configure(latency_ms=400)
    try:
        page.get_by_role("button", name="Invite a parent").click()
        expect(page).to_have_url(re.compile(r"/student/codes/[0-9a-f-]{36}/$"))
        expect(page.get_by_role("heading", level=1)).to_have_text("Making your code…")
        marks_the_page(page)
        code = the_code(page)
    finally:
        portal.sim.configure(latency_ms=0)
    assert is_the_same_page(page), "the code page was reloaded, not updated in place"

    expect(page.get_by_role("heading", level=1)).to_have_text("Your pairing code")
    assert page.locator("#the-code").evaluate("(e) => parseFloat(getComputedStyle(e).fontSize)") >= 32
    expect(page.get_by_label("The code, letter by letter")).to_contain_text(code[0])
    expect(page.get_by_role("img", name=re.compile("QR code"))).to_be_visible()
    expect(page.get_by_text(re.compile(r"Expires .*\(in 7 days\)"))).to_be_visible()
    assert_accessible(page)

    copy = page.get_by_role("button", name="Copy the code")
    copy.click()
    expect(page.get_by_role("button", name="Copied!")).to_be_visible()
    assert page.evaluate("() => navigator.clipboard.readText()") == code

    page.get_by_label("Your parent's email address").fill(parent_email)
    page.get_by_role("button", name="Send the code").click()
    expect(page.get_by_role("status")).to_have_text(f"We're emailing the code to {parent_email}.")
    expect(page.locator("#the-code")).to_have_text(code)

    page.get_by_role("link", name="Printable card").click()
    expect(page).to_have_url(re.compile(r"/student/codes/[0-9a-f-]{36}/card/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Link to your child in Canvas")
    expect(page.locator(".print-card .code")).to_have_text(code)
    expect(page.get_by_text(f"{canvas_user['name']} invites you")).to_be_visible()
    expect(page.get_by_role("button", name="Print this card")).to_be_visible()

    page.get_by_role("link", name="Back", exact=True).click()
    page.get_by_role("link", name="Back to my codes").click()
    expect(page).to_have_url(path_is("/student/"))
    expect(page.get_by_role("listitem").filter(has_text=code)).to_be_visible()
