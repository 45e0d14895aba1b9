"""A school's name, logo and colour (portal/school.py, portal/palette.py)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from portal import school
from portal.palette import MINIMUM_CONTRAST, WHITE, accent_palette, contrast, parse_hex
from tests.portal.test_settings import load_settings
from tests.staff.conftest import fast_accounts, staff, student  # noqa: F401
from tests.staff.test_letters import ready_code

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def a_school(settings, tmp_path):
    logo = tmp_path / "lincoln.png"
    logo.write_bytes(PNG)
    settings.SCHOOL_NAME = "Lincoln Unified"
    settings.SCHOOL_LOGO = logo
    settings.SCHOOL_COLOR = "#2e7d32"
    settings.SCHOOL_PALETTE = accent_palette("#2e7d32")
    return settings


# -- the colour -----------------------------------------------------------------------------------
def test_contrast_is_wcags_ratio():
    assert contrast((0, 0, 0), WHITE) == pytest.approx(21)
    assert contrast(WHITE, WHITE) == pytest.approx(1)
    assert contrast(parse_hex("#0b5cad"), WHITE) == pytest.approx(6.67, abs=0.01)  # WebAIM's checker says 6.67:1


def test_a_readable_colour_gives_the_stylesheet_its_accent_its_tint_and_its_hover_shade():
    palette = accent_palette("2E7D32")

    assert palette["accent"] == "#2e7d32"
    accent, soft, dark = (parse_hex(palette[name]) for name in ("accent", "accent-soft", "accent-dark"))
    assert contrast(accent, soft) >= MINIMUM_CONTRAST
    assert contrast(dark, WHITE) > contrast(accent, WHITE)
    assert accent_palette("#05a")["accent"] == "#0055aa"


@pytest.mark.parametrize("colour", ["#ffcc00", "#8fbc8f", "#ff6600"])
def test_a_colour_too_light_to_read_is_refused_with_a_darker_one_that_passes(colour):
    with pytest.raises(ValueError, match="too light to read") as refused:
        accent_palette(colour)

    suggested = str(refused.value).split("for example ")[1].rstrip(").")
    accent_palette(suggested)  # passes


@pytest.mark.parametrize("value", ["blue", "#12345", "rgb(0,0,0)", "#0b5cad; x: y", ""])
def test_anything_but_a_hex_colour_is_refused(value):
    with pytest.raises(ValueError, match="#rrggbb"):
        accent_palette(value)


def test_the_portal_refuses_to_start_with_a_colour_families_could_not_read():
    result = load_settings("settings.SCHOOL_PALETTE", DEBUG="1", SCHOOL_COLOR="#ffcc00")

    assert result.returncode != 0
    assert "ImproperlyConfigured: SCHOOL_COLOR: #ffcc00 is too light to read" in result.stderr


def test_the_portal_starts_with_a_readable_colour():
    result = load_settings("settings.SCHOOL_PALETTE['accent']", DEBUG="1", SCHOOL_COLOR="#7B1FA2")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "'#7b1fa2'"


# -- the logo -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("logo.png", "SCHOOL_LOGO must be the absolute path of an image file, not 'logo.png'"),
        ("/nowhere/logo.png", "SCHOOL_LOGO must be the absolute path of an image file"),
        ("{file}.txt", "SCHOOL_LOGO must be a file ending .gif, .jpeg, .jpg, .png, .svg, .webp"),
    ],
)
def test_the_portal_refuses_to_start_with_a_logo_it_cannot_serve(tmp_path, value, message):
    text = tmp_path / "logo.txt"
    text.write_text("not an image")
    result = load_settings("settings.SCHOOL_LOGO", DEBUG="1", SCHOOL_LOGO=value.format(file=tmp_path / "logo"))

    assert result.returncode != 0
    assert message in result.stderr


def test_the_portal_refuses_a_logo_larger_than_a_header_needs(tmp_path):
    big = tmp_path / "logo.png"
    big.write_bytes(b"\0" * (school.LOGO_MAX_BYTES + 1))
    result = load_settings("settings.SCHOOL_LOGO", DEBUG="1", SCHOOL_LOGO=str(big))

    assert result.returncode != 0
    assert "larger than 1 MiB" in result.stderr


# -- on the pages ---------------------------------------------------------------------------------
def test_every_page_shows_the_schools_name_and_logo_and_links_its_colour(db, a_school):
    page = Client().get(reverse("home")).content.decode()
    look = school.school_now()

    assert '<span class="brand-school">Lincoln Unified</span> Family Portal</a>' in page
    assert f'<img class="brand-logo" src="{look.logo_url}" alt=""' in page
    assert f'<link rel="stylesheet" href="{look.theme_url}">' in page


def test_a_school_that_keeps_the_portals_colour_costs_no_extra_stylesheet(db, settings):
    assert settings.SCHOOL_PALETTE["accent"] == school.PORTAL_COLOR
    page = Client().get(reverse("home")).content.decode()

    assert school.school_now().theme_url is None
    assert reverse("school_theme") not in page
    assert 'class="brand-school"' not in page  # no name set


def test_the_theme_is_the_schools_palette_kept_for_a_year_at_its_digest(db, a_school):
    client = Client()
    response = client.get(school.school_now().theme_url)

    assert response["Content-Type"] == "text/css; charset=utf-8"
    css = response.content.decode()
    assert "--accent: #2e7d32;" in css and "--accent-soft: #f0f6f1;" in css and "--accent-dark: #256428;" in css
    assert "max-age=31536000" in response["Cache-Control"] and "immutable" in response["Cache-Control"]
    assert client.get(reverse("school_theme"), HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304


def test_an_address_with_an_old_digest_is_kept_only_a_few_minutes(db, a_school):
    response = Client().get(reverse("school_theme") + "?v=0123456789abcdef")

    assert response.status_code == 200
    assert "max-age=300" in response["Cache-Control"] and "immutable" not in response["Cache-Control"]


def test_the_logo_is_the_schools_file(db, a_school):
    response = Client().get(school.school_now().logo_url)

    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response.content == PNG
    assert "immutable" in response["Cache-Control"]


def test_a_changed_logo_file_gets_a_new_address(db, a_school):
    before = school.school_now().logo_url
    a_school.SCHOOL_LOGO.write_bytes(PNG + b"new")

    after = school.school_now().logo_url
    assert after != before
    assert Client().get(after).content == PNG + b"new"


def test_without_a_logo_the_header_shows_a_mark_in_the_schools_colour(db, a_school):
    a_school.SCHOOL_LOGO = ""
    response = Client().get(school.school_now().logo_url)

    assert response["Content-Type"] == "image/svg+xml"
    assert b'fill="#2e7d32"' in response.content
    # Opened on its own, an SVG is a document: it may run and load nothing.
    assert "sandbox" in response["Content-Security-Policy"] and "script-src" not in response["Content-Security-Policy"]


def test_the_theme_and_logo_answer_get_and_head_only(db):
    for name in ("school_theme", "school_logo"):
        assert Client().post(reverse(name)).status_code == 405
        assert Client().head(reverse(name)).status_code == 200


def test_printed_letters_and_cards_carry_the_schools_name_and_logo(a_school, staff, student):
    ready_code(student.student, staff.user, code="Zq7pR2")
    letter = staff.client.get(reverse("staff_letters_student", args=[student.student.pk]) + "?lang=es")
    card = student.client.get(reverse("pairing_code_card", args=[student.own["pairing_code"].pk]))

    logo = f'<img src="{school.school_now().logo_url}" alt=""'
    assert (
        f'{logo} width="40" height="40"> <span>Lincoln Unified · Portal para Familias</span>' in letter.content.decode()
    )
    assert f'{logo} width="40" height="40"> <span>Lincoln Unified · Family Portal</span>' in card.content.decode()
