"""The browser harness itself: Chromium runs the portal's pages, and axe finds what it should."""

from tests.browser.axe import assert_accessible, axe_violations


def test_the_home_page_reads_in_each_language_and_passes_axe(person):
    for language, heading in (("en", "Canvas"), ("es", "Canvas")):
        someone = person(language=language)
        someone.page.goto("/")
        assert someone.page.locator("html").get_attribute("lang") == language
        assert heading in someone.page.locator("h1").inner_text()
        assert_accessible(someone.page)


def test_axe_reports_what_breaks_the_rules(person):
    # So that a sweep finding nothing means the pages are clean, not that axe never ran.
    page = person().page
    page.goto("/")
    page.evaluate("() => document.body.append(document.createElement('img'))")
    assert any(line.startswith("image-alt ") for line in axe_violations(page))
