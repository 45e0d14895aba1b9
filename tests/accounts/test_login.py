from django.core import mail

from .conftest import PASSWORD, code_from_last_email, signed_in_user_id


def test_it_signs_in_a_parent_with_email_and_password(client, parent):
    response = client.post("/accounts/login/", {"login": "maria@example.com", "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == "/family/"
    assert signed_in_user_id(client) == str(parent.user_id)


def test_it_refuses_a_wrong_password(client, parent):
    response = client.post("/accounts/login/", {"login": "maria@example.com", "password": "not the password"})

    assert response.status_code == 200
    assert signed_in_user_id(client) is None


def test_it_signs_in_a_parent_with_a_code_sent_by_email(client, parent):
    response = client.post("/accounts/login/code/", {"email": "maria@example.com"})

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/code/confirm/"
    code = code_from_last_email("maria@example.com")

    response = client.post("/accounts/login/code/confirm/", {"code": code})

    assert response.status_code == 302
    assert signed_in_user_id(client) == str(parent.user_id)


def test_it_offers_the_code_from_the_sign_in_page(client):
    response = client.get("/accounts/login/")

    assert b'href="/accounts/login/code/"' in response.content


def test_it_signs_out_on_post_only(client, parent):
    client.force_login(parent.user)

    client.get("/accounts/logout/")
    assert signed_in_user_id(client) == str(parent.user_id)

    client.post("/accounts/logout/")
    assert signed_in_user_id(client) is None
    assert mail.outbox == []
