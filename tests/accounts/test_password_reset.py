from .conftest import PASSWORD, code_from_last_email, signed_in_user_id

NEW_PASSWORD = "a brand new long passphrase"


def test_it_resets_a_forgotten_password_with_a_code_sent_by_email(client, parent):
    response = client.post("/accounts/password/reset/", {"email": "maria@example.com"})

    assert response.status_code == 302
    code = code_from_last_email("maria@example.com")
    response = client.post(response["Location"], {"code": code})
    assert response.status_code == 302
    response = client.post(response["Location"], {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 302

    client.logout()
    response = client.post("/accounts/login/", {"login": "maria@example.com", "password": NEW_PASSWORD})
    assert response.status_code == 302
    assert signed_in_user_id(client) == str(parent.user_id)


def test_it_keeps_the_password_when_the_code_is_wrong(client, parent):
    response = client.post("/accounts/password/reset/", {"email": "maria@example.com"})
    response = client.post(response["Location"], {"code": "NOPE-NOPE"})

    assert response.status_code == 200
    assert client.get("/accounts/password/reset/complete/").status_code != 200
    parent.user.refresh_from_db()
    assert parent.user.check_password(PASSWORD)
