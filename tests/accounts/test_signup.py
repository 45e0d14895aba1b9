from django.core import mail

from linking.models import Parent

from .conftest import PASSWORD, code_from_last_email, signed_in_user_id

SIGNUP = {"name": "  Maria Garcia ", "email": "Maria@Example.com", "password1": PASSWORD}


def test_it_shows_the_signup_form_with_name_email_and_one_password(client):
    response = client.get("/accounts/signup/")

    assert response.status_code == 200
    body = response.content.decode()
    assert 'name="viewport"' in body
    assert body.index('name="name"') < body.index('name="email"') < body.index('name="password1"')
    assert 'autocomplete="name"' in body
    assert 'name="password2"' not in body
    assert '<label for="id_name">' in body


def test_it_registers_a_parent_who_confirms_the_emailed_code_and_is_signed_in(client):
    response = client.post("/accounts/signup/", SIGNUP)

    assert response.status_code == 302
    assert response["Location"] == "/accounts/confirm-email/"
    assert signed_in_user_id(client) is None
    assert len(mail.outbox) == 1
    code = code_from_last_email("maria@example.com")

    response = client.post("/accounts/confirm-email/", {"code": code})

    assert response.status_code == 302
    assert response["Location"] == "/family/"  # straight to their children, to add the first
    parent = Parent.objects.get(user__email="maria@example.com")
    assert parent.name == "Maria Garcia"
    assert signed_in_user_id(client) == str(parent.user_id)
    assert parent.user.emailaddress_set.get().verified


def test_it_does_not_sign_in_a_parent_who_enters_a_wrong_code(client):
    client.post("/accounts/signup/", SIGNUP)
    code = code_from_last_email("maria@example.com")

    response = client.post("/accounts/confirm-email/", {"code": "WRONG" if code != "WRONG" else "WRONG2"})

    assert response.status_code == 200
    assert signed_in_user_id(client) is None


def test_it_requires_a_name(client):
    response = client.post("/accounts/signup/", {**SIGNUP, "name": "   "})

    assert response.status_code == 200
    assert response.context["form"].errors["name"]
    assert not Parent.objects.exists()
    assert mail.outbox == []


def test_it_makes_no_second_account_for_a_known_email(client, parent):
    response = client.post("/accounts/signup/", {**SIGNUP, "email": "maria@example.com", "name": "Someone Else"})

    # allauth answers as for a new address, so the form cannot tell who has an account, and warns the owner.
    assert response.status_code == 302
    assert Parent.objects.get().name == "Maria Garcia"
    assert mail.outbox[-1].to == ["maria@example.com"]


def test_a_parent_signing_up_in_spanish_gets_spanish_from_the_school(client):
    client.post(
        "/accounts/signup/",
        {"name": "Lucía Pérez", "email": "lucia@example.test", "password1": "una frase bastante larga"},
        HTTP_ACCEPT_LANGUAGE="es-MX,es;q=0.9",
    )
    assert Parent.objects.get(user__email="lucia@example.test").locale == "es"
