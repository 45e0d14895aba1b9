"""The family on phones (360x740, touch): every page of the student's and the parent's journeys fits
the screen's width, and what they press is on screen and big enough to tap. One parent reads Spanish."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from linking.models import Parent
from tests.browser.axe import assert_accessible
from tests.browser.journeys import (
    SPANISH,
    a_canvas_student,
    code_made_in_canvas,
    fits_the_screen,
    linked_in_canvas,
    path_is,
    registers_as_a_parent,
    signs_in_with_canvas,
    tappable,
    the_code,
)


def test_a_student_and_a_parent_link_on_phones_without_scrolling_sideways(person, portal):
    child = a_canvas_student(portal)
    email = f"{portal.sim.unique('parent')}@example.test"
    student, parent = person(phone=True).page, person(phone=True).page

    signs_in_with_canvas(student, portal, child, look=fits_the_screen)
    tappable(student.get_by_role("button", name="Invite a parent"))
    student.get_by_role("button", name="Invite a parent").tap()
    code = the_code(student)
    fits_the_screen(student)
    for control in (
        student.locator("#the-code"),
        student.get_by_role("button", name="Copy the code"),
        student.get_by_role("link", name="Printable card"),
        student.get_by_label("Your parent's email address"),
        student.get_by_role("button", name="Send the code"),
    ):
        tappable(control)
    expect(student.get_by_role("img", name=re.compile("QR code"))).to_be_in_viewport(ratio=0.5)
    student.get_by_role("link", name="Printable card").tap()
    expect(student.locator(".print-card .code")).to_have_text(code)
    fits_the_screen(student)

    parent.goto("/")
    fits_the_screen(parent)
    tappable(parent.get_by_role("main").get_by_role("link", name="Create a parent account"))
    parent.get_by_role("main").get_by_role("link", name="Create a parent account").tap()
    tappable(parent.get_by_role("button", name="Sign Up"))
    registers_as_a_parent(parent, name="Maria Garcia", email=email, look=fits_the_screen)
    expect(parent.get_by_role("heading", level=1)).to_have_text("My children")
    fits_the_screen(parent)
    tappable(parent.get_by_role("link", name="Add a child"))
    parent.get_by_role("link", name="Add a child").tap()
    expect(parent.get_by_role("heading", level=1)).to_have_text("Add a child")
    fits_the_screen(parent)
    tappable(parent.get_by_label("Pairing code"))
    tappable(parent.get_by_role("button", name="Link"))
    parent.get_by_label("Pairing code").fill(code)
    parent.get_by_role("button", name="Link").tap()

    expect(parent.get_by_role("listitem").filter(has_text=child["name"])).to_be_visible()
    fits_the_screen(parent)
    tappable(parent.get_by_role("link", name="Remove this link"))
    assert linked_in_canvas(portal, Parent.objects.get(user__email=email)) == [child["id"]]


def test_a_parent_who_reads_spanish_links_a_child_in_spanish_on_a_phone(person, portal):
    child = a_canvas_student(portal)
    code = code_made_in_canvas(portal, child)
    email = f"{portal.sim.unique('parent')}@example.test"
    page = person(phone=True, language="es").page

    page.goto("/")
    expect(page.locator("html")).to_have_attribute("lang", "es")
    expect(page.get_by_role("heading", level=1)).to_have_text("Siga las clases de su hijo o hija en Canvas")
    fits_the_screen(page)
    page.get_by_role("main").get_by_role("link", name="Crear una cuenta de padre, madre o tutor").tap()
    registers_as_a_parent(page, name="María García", email=email, words=SPANISH, look=fits_the_screen)
    expect(page.get_by_role("status")).to_contain_text(f"Ha confirmado {email}.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Mis hijos")
    page.get_by_role("link", name="Agregar un hijo o hija").tap()
    expect(page).to_have_url(path_is("/family/add/"))
    fits_the_screen(page)
    page.get_by_label("Código de vinculación").fill(code)
    tappable(page.get_by_role("button", name="Vincular"))
    page.get_by_role("button", name="Vincular").tap()

    expect(page.get_by_role("status")).to_contain_text("Recibido: lo estamos vinculando ahora.")
    expect(page.get_by_role("heading", name="Hijos vinculados")).to_be_visible()
    expect(page.get_by_role("listitem").filter(has_text=child["name"])).to_contain_text("Eliminar este vínculo")
    expect(page.locator("html")).to_have_attribute("lang", "es")
    fits_the_screen(page)
    assert_accessible(page)
    maria = Parent.objects.get(user__email=email)
    assert maria.locale.startswith("es")
    assert linked_in_canvas(portal, maria) == [child["id"]]
