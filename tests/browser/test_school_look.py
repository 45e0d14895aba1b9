"""A school's colour and logo as a browser shows them, and still readable by axe's contrast rules."""

from __future__ import annotations

from playwright.sync_api import expect

from portal.palette import accent_palette
from tests.browser.axe import assert_accessible


def test_the_schools_colour_and_logo_reach_the_page_and_it_stays_readable(person, settings, tmp_path):
    logo = tmp_path / "logo.svg"
    logo.write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40">'
        '<rect width="120" height="40" fill="#7b1fa2"/></svg>'
    )
    settings.SCHOOL_NAME = "Lincoln Unified"
    settings.SCHOOL_LOGO = logo
    settings.SCHOOL_PALETTE = accent_palette("#7b1fa2")

    page = person(phone=True).page
    page.goto("/")

    expect(page.locator(".brand")).to_have_text("Lincoln Unified Family Portal")
    logo_loaded = page.locator(".brand-logo").evaluate("image => image.complete && image.naturalWidth")
    assert logo_loaded == 120
    # The links and buttons take the school's colour from /school/theme.css.
    button = page.locator("main a.button").first
    assert button.evaluate("a => getComputedStyle(a).backgroundColor") == "rgb(123, 31, 162)"
    assert_accessible(page)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
