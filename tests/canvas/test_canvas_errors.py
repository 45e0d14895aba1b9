"""Each Canvas error on the wire becomes one typed error carrying status, messages and the request."""

from __future__ import annotations

import pickle

import pytest
import requests

from linking.canvas import (
    CanvasClient,
    CanvasError,
    CanvasInvalidPairingCode,
    CanvasInvalidToken,
    CanvasLoginTaken,
    CanvasNotAuthorized,
    CanvasNotFound,
    CanvasValidationError,
)
from linking.canvas.errors import error_for


def test_it_reads_a_request_without_a_token_as_an_invalid_token(canvas_sim):
    # The client never sends a request without a token, so ask Canvas directly and classify its answer.
    response = requests.get(f"{canvas_sim.base_url}/api/v1/users/self", timeout=5)

    error = error_for(response, "GET", "/api/v1/users/self")

    assert isinstance(error, CanvasInvalidToken)
    assert error.status == 401
    assert error.messages == ("user authorization required",)


def test_it_refuses_to_build_a_client_without_a_token(canvas_sim):
    with pytest.raises(ValueError, match="token"):
        CanvasClient(base_url=canvas_sim.base_url, token="")


def test_it_raises_invalid_token_for_an_unknown_token(make_client):
    with pytest.raises(CanvasInvalidToken) as caught:
        make_client("not-a-real-token").get_user("self")

    assert caught.value.status == 401
    assert caught.value.messages == ("Invalid access token.",)
    assert (caught.value.method, caught.value.path) == ("GET", "/api/v1/users/self")


def test_it_raises_invalid_token_for_an_expired_token(canvas_sim, make_client, parent):
    token = canvas_sim.make_token(parent["id"], expires_in=-60)

    with pytest.raises(CanvasInvalidToken) as caught:
        make_client(token).get_user("self")

    assert caught.value.messages == ("Expired access token.",)


def test_it_raises_invalid_token_for_a_revoked_token(canvas_sim, make_client, parent):
    token = canvas_sim.make_token(parent["id"])
    client = make_client(token)
    client.request("DELETE", "/login/oauth2/token")

    with pytest.raises(CanvasInvalidToken) as caught:
        client.get_user("self")

    assert caught.value.messages == ("Revoked access token.",)


def test_it_raises_not_authorized_when_the_token_may_not_act_for_that_user(make_client, parent, student):
    with pytest.raises(CanvasNotAuthorized) as caught:
        make_client(parent["token"]).list_observees(student["id"])

    assert caught.value.status == 401
    assert caught.value.messages == ("user not authorized to perform that action",)
    assert caught.value.path == f"/api/v1/users/{student['id']}/observees?per_page=100"


def test_it_raises_not_authorized_when_canvas_sends_the_newer_403(canvas_sim, make_client, parent, student):
    canvas_sim.configure(unauthorized_status=403)

    with pytest.raises(CanvasNotAuthorized) as caught:
        make_client(parent["token"]).list_observees(student["id"])

    assert caught.value.status == 403
    assert caught.value.messages == ("user not authorized to perform that action",)


def test_it_raises_not_authorized_for_a_pairing_code_of_a_student_not_enrolled_yet(canvas_sim, admin):
    newcomer = canvas_sim.make_user(student=False)

    with pytest.raises(CanvasNotAuthorized) as caught:
        admin.create_pairing_code(newcomer["id"])

    assert caught.value.status == 401


def test_it_raises_not_authorized_not_invalid_token_for_insufficient_scopes(canvas_sim, make_client, parent):
    token = canvas_sim.make_token(parent["id"], scopes=["url:GET|/api/v1/users/:user_id"])
    client = make_client(token)
    assert client.get_user("self")["id"] == parent["id"]

    with pytest.raises(CanvasNotAuthorized) as caught:
        client.list_observees("self")

    assert caught.value.status == 401
    assert caught.value.messages == ("Insufficient scopes on access token.",)


def test_it_raises_not_found_for_a_user_that_does_not_exist(admin):
    with pytest.raises(CanvasNotFound) as caught:
        admin.get_user(987654321)

    assert caught.value.status == 404
    assert caught.value.messages == ("The specified resource does not exist.",)
    assert caught.value.path == "/api/v1/users/987654321"


def test_it_raises_a_validation_error_for_a_missing_parameter(admin):
    with pytest.raises(CanvasValidationError) as caught:
        admin.request("POST", "/api/v1/accounts/self/users", data={"user[name]": "No Login"})

    assert type(caught.value) is CanvasValidationError
    assert caught.value.status == 400
    assert caught.value.messages == ("pseudonym is missing",)


def test_it_raises_a_validation_error_for_a_one_character_search_term(admin):
    # search_users refuses this itself; sent by hand it shows Canvas's field-style error.
    with pytest.raises(CanvasValidationError) as caught:
        admin.request("GET", "/api/v1/accounts/self/users", params={"search_term": "a"})

    assert caught.value.status == 400
    assert caught.value.messages == ("2 or more characters is required",)


def test_it_raises_login_taken_with_the_validation_errors(admin, parent):
    with pytest.raises(CanvasLoginTaken) as caught:
        admin.create_observer(name="Second Account", email=parent["login"].upper())

    assert caught.value.status == 400
    assert "pseudonym.unique_id: ID already in use for this account and authentication provider" in (
        caught.value.messages
    )
    assert caught.value.errors["pseudonym"]["unique_id"][0]["type"] == "taken"


def test_it_raises_invalid_pairing_code_when_linking_with_a_wrong_code(admin, parent):
    with pytest.raises(CanvasInvalidPairingCode) as caught:
        admin.link_with_pairing_code(parent["id"], "zzzzzz")

    assert caught.value.status == 422
    assert caught.value.messages == ("Invalid pairing code.",)


def test_it_raises_invalid_pairing_code_when_creating_a_user_with_a_wrong_code(canvas_sim, admin):
    email = f"{canvas_sim.unique('p')}@example.test"

    with pytest.raises(CanvasInvalidPairingCode) as caught:
        admin.create_observer(name="Wrong Code", email=email, pairing_code="zzzzzz")

    assert caught.value.status == 400
    assert caught.value.messages == ("pairing_code.code: invalid",)
    assert admin.find_user_by_login(email) is None


def test_it_keeps_the_token_out_of_errors_and_survives_pickling(make_client):
    token = "secret-token-that-must-not-leak"

    with pytest.raises(CanvasInvalidToken) as caught:
        make_client(token).get_user("self")

    restored = pickle.loads(pickle.dumps(caught.value))  # noqa: S301 - our own bytes; Celery pickles failures
    assert type(restored) is CanvasInvalidToken
    assert (restored.status, restored.messages, restored.path) == (
        401,
        ("Invalid access token.",),
        "/api/v1/users/self",
    )
    for text in (str(caught.value), repr(caught.value), str(restored), repr(caught.value.__dict__)):
        assert token not in text
    assert isinstance(restored, CanvasError)
