"""The family pages in Spanish: a browser that asks for Spanish gets every sentence of the page in it.

Each page is read as the persona who uses it (tests/staff/conftest.py) with ``Accept-Language: es``;
a few of the page's own sentences must be there in Spanish, and their English must be gone.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.canvas_oauth.conftest import configured
from tests.staff.conftest import anonymous, fast_accounts, parent_a, student  # noqa: F401

SPANISH_BROWSER = {"HTTP_ACCEPT_LANGUAGE": "es-US,es;q=0.9,en;q=0.5"}

# The frame every page shares (templates/base.html).
FRAME_SPANISH = ('<html lang="es">', "Ir al contenido principal", "Portal para Familias</a>", "Un portal de Canvas")
FRAME_ENGLISH = ("Skip to main content", "· Family Portal</title>", ">Family Portal</a>", "run by your school")


@pytest.fixture(autouse=True)
def canvas_sign_in_offered(settings):
    # The home page and the sign-in page then show the students' way in too.
    settings.SOCIALACCOUNT_PROVIDERS = configured()


def read_in_spanish(client, url: str) -> str:
    response = client.get(url, **SPANISH_BROWSER)
    assert response.status_code == 200, url
    assert response["Content-Language"] == "es"
    return response.content.decode()


def assert_spanish(page: str, spanish: tuple[str, ...], english: tuple[str, ...], *, frame: bool = True) -> None:
    missing = [text for text in spanish + (FRAME_SPANISH if frame else ()) if text not in page]
    left_in_english = [text for text in english + (FRAME_ENGLISH if frame else ()) if text in page]
    assert not missing, f"not on the page: {missing}"
    assert not left_in_english, f"still in English: {left_in_english}"


def test_the_home_page(anonymous):
    page = read_in_spanish(anonymous.client, reverse("home"))

    assert_spanish(
        page,
        (
            "Siga las clases de su hijo o hija en Canvas",
            "Soy padre, madre o tutor",
            "Soy estudiante",
            "Crear una cuenta de padre, madre o tutor",
            "Iniciar sesión con Canvas",
            "Cómo funciona",
        ),
        (
            "Follow your child",
            "Your school uses Canvas",
            "I'm a parent",
            "I'm a student",
            "Create a parent account",
            "Sign in with Canvas",
            "How it works",
            "Nothing changes for the student",
        ),
    )


def test_the_parent_dashboard_and_its_requests(parent_a):
    page = read_in_spanish(parent_a.client, reverse("parent_home"))
    assert_spanish(
        page,
        ("Mis hijos", "Agregar un hijo o hija", "Hijos vinculados", "En revisión por la escuela", "Cerrar sesión"),
        ("My children", "Add a child", "Linked children", "Waiting for the school", "Remove this link", "Sign out"),
    )

    # The part the dashboard polls, on its own.
    requests = read_in_spanish(parent_a.client, reverse("parent_requests"))
    assert_spanish(
        requests,
        ("Hijos vinculados", "En revisión por la escuela", "Eliminar este vínculo"),
        ("Linked children", "Waiting for the school", "Remove this link", "entered"),
        frame=False,
    )


def test_adding_a_child(parent_a):
    page = read_in_spanish(parent_a.client, reverse("add_child") + "?code=aB3xZ9")

    assert_spanish(
        page,
        ("Código de vinculación", "El código de 6 caracteres que le dio su hijo o hija", "Vincular</button>"),
        ("Pairing code", "The 6-character code", "Ask your child to open", "Link</button>", "Careful: this code"),
    )


def test_the_student_pages(student):
    code = student.own["pairing_code"]

    home = read_in_spanish(student.client, reverse("student_home"))
    assert_spanish(
        home,
        ("Invitar a un padre, madre o tutor", "Sus códigos", "Padres o tutores vinculados ahora", "Mis códigos"),
        ("Invite a parent", "Your codes", "Parents linked now", "My codes", "Each parent needs their own code"),
    )

    detail = read_in_spanish(student.client, reverse("pairing_code_detail", args=[code.pk]))
    assert_spanish(
        detail,
        (
            "Su código de vinculación",
            "A mayúscula",
            "el número uno",
            "Copiar el código",
            "Tarjeta para imprimir",
            "Correo electrónico de su padre, madre o tutor",
        ),
        (
            "Your pairing code",
            "capital",
            "digit",
            "lower-case",
            "Copy the code",
            "Printable card",
            "Your parent's email address",
        ),
    )

    card = read_in_spanish(student.client, reverse("pairing_code_card", args=[code.pk]))
    assert_spanish(
        card,
        ("Vincúlese con su hijo o hija en Canvas", "Imprimir esta tarjeta", "Escanee el código QR"),
        ("Link to your child in Canvas", "Print this card", "Scan the QR code", "invites you to follow"),
    )


def test_signing_in_and_signing_up(anonymous):
    sign_in = read_in_spanish(anonymous.client, reverse("account_login"))
    assert_spanish(
        sign_in,
        ("Iniciar sesión", "Iniciar sesión con Canvas (estudiantes)", "Crear una cuenta de padre, madre o tutor"),
        ("Sign In", "Sign in with Canvas (students)", "Create a parent account", "Send me a sign-in code"),
    )

    sign_up = read_in_spanish(anonymous.client, reverse("account_signup"))
    assert_spanish(
        sign_up,
        ("Su nombre completo", "Tal como figura en la escuela", "Registrarse"),
        ("Your full name", "As the school knows you", "Sign Up"),
    )


def test_an_english_browser_still_gets_english(anonymous):
    response = anonymous.client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")

    page = response.content.decode()
    assert '<html lang="en">' in page
    assert "Follow your child's classes in Canvas" in page
    assert "Siga las clases" not in page
