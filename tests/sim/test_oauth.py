"""The simulator's OAuth2 provider against the contract ("OAuth2" and "Identifiers and auth").

The browser side is driven with a ``requests.Session`` exactly as a person would click through it:
the sign-in form, then the consent page, then the redirect back to the portal.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

CLIENT_ID = "10000000000001"
CLIENT_SECRET = "demo-portal-secret"
REDIRECT_URI = "http://127.0.0.1:8000/accounts/canvas/callback/"
STUDENT_LOGIN = "s1001"
STUDENT_PASSWORD = "student-demo"
UNAUTHENTICATED = {"status": "unauthenticated", "errors": [{"message": "user authorization required"}]}
HIDDEN_QUERY = re.compile(r'name="oauth_query" value="([^"]*)"')
TIMEOUT = 10


# -- helpers ------------------------------------------------------------------------------------
def oauth_query(**overrides) -> dict:
    query = {
        "client_id": CLIENT_ID,
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "state": secrets.token_urlsafe(12),
    }
    query.update(overrides)
    return {k: v for k, v in query.items() if v is not None}


def hidden_query(page: requests.Response) -> str:
    match = HIDDEN_QUERY.search(page.text)
    assert match, f"no oauth_query field in:\n{page.text}"
    return html.unescape(match.group(1))


def redirect_params(response: requests.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def sign_in(sim, session: requests.Session, query: dict, *, login=STUDENT_LOGIN, password=STUDENT_PASSWORD):
    """Open the authorization URL and submit the sign-in form; returns the page after signing in."""
    page = session.get(f"{sim.base_url}/login/oauth2/auth", params=query, timeout=TIMEOUT, allow_redirects=False)
    assert page.status_code == 200, page.text
    assert 'action="/login/canvas"' in page.text
    return session.post(
        f"{sim.base_url}/login/canvas",
        data={
            "oauth_query": hidden_query(page),
            "pseudonym_session[unique_id]": login,
            "pseudonym_session[password]": password,
        },
        timeout=TIMEOUT,
        allow_redirects=False,
    )


def authorize(sim, **overrides) -> dict[str, str]:
    """Sign in as a demo student and press Authorize; returns the redirect's query parameters."""
    session = requests.Session()
    consent = sign_in(sim, session, oauth_query(**overrides))
    assert consent.status_code == 200, consent.text
    assert 'action="/login/oauth2/accept"' in consent.text
    response = session.post(
        f"{sim.base_url}/login/oauth2/accept",
        data={"oauth_query": hidden_query(consent)},
        timeout=TIMEOUT,
        allow_redirects=False,
    )
    return redirect_params(response)


def exchange(sim, code: str, *, auth=None, **extra) -> requests.Response:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, **extra}
    if auth is None:
        data.update(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    return requests.post(f"{sim.base_url}/login/oauth2/token", data=data, auth=auth, timeout=TIMEOUT)


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def get_self(sim, token: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"{sim.base_url}/api/v1/users/self", headers=headers, timeout=TIMEOUT)


def assert_bad_token(response: requests.Response, message: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="canvas-lms"'
    assert response.json() == {"errors": [{"message": message}]}


@pytest.fixture
def tokens(canvas_sim) -> dict:
    """A fresh token body from a completed code flow."""
    params = authorize(canvas_sim)
    response = exchange(canvas_sim, params["code"])
    assert response.status_code == 200, response.text
    return response.json()


# -- the code flow ------------------------------------------------------------------------------
def test_the_full_code_flow_returns_the_contract_token_body_and_the_token_works(canvas_sim):
    params = authorize(canvas_sim)
    response = exchange(canvas_sim, params["code"])

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "token_type", "user", "refresh_token", "expires_in"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["access_token"] and body["refresh_token"]
    assert set(body["user"]) == {"id", "name", "global_id", "effective_locale"}
    assert body["user"]["name"] == "Ava Thompson"
    assert isinstance(body["user"]["global_id"], str)

    me = get_self(canvas_sim, body["access_token"])
    assert me.status_code == 200, me.text
    assert me.json()["id"] == body["user"]["id"]
    assert me.json()["name"] == "Ava Thompson"


def test_the_state_is_echoed_on_the_redirect(canvas_sim):
    state = "opaque-" + secrets.token_hex(8)
    params = authorize(canvas_sim, state=state)
    assert params["state"] == state
    assert "code" in params


def test_a_redirect_uri_on_the_same_host_with_another_port_is_accepted(canvas_sim):
    params = authorize(canvas_sim, redirect_uri="http://localhost:9123/callback/")
    response = exchange(canvas_sim, params["code"], redirect_uri="http://localhost:9123/callback/")
    assert response.status_code == 200, response.text


def test_pkce_s256_succeeds_with_the_right_verifier(canvas_sim):
    verifier, challenge = pkce_pair()
    params = authorize(canvas_sim, code_challenge=challenge, code_challenge_method="S256")
    response = exchange(canvas_sim, params["code"], code_verifier=verifier)
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "Bearer"


def test_pkce_s256_fails_invalid_grant_with_a_wrong_verifier(canvas_sim):
    _verifier, challenge = pkce_pair()
    params = authorize(canvas_sim, code_challenge=challenge, code_challenge_method="S256")
    response = exchange(canvas_sim, params["code"], code_verifier=secrets.token_urlsafe(48))
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_grant"


def test_pkce_s256_fails_invalid_grant_with_no_verifier(canvas_sim):
    _verifier, challenge = pkce_pair()
    params = authorize(canvas_sim, code_challenge=challenge, code_challenge_method="S256")
    response = exchange(canvas_sim, params["code"])
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_grant"


def test_a_code_can_be_exchanged_only_once(canvas_sim):
    code = authorize(canvas_sim)["code"]
    assert exchange(canvas_sim, code).status_code == 200
    second = exchange(canvas_sim, code)
    assert second.status_code == 400, second.text
    assert second.json()["error"] == "invalid_grant"
    assert "error_description" in second.json()


def test_a_code_exchanged_with_another_redirect_uri_fails_invalid_grant(canvas_sim):
    code = authorize(canvas_sim)["code"]
    response = exchange(canvas_sim, code, redirect_uri="http://127.0.0.1:8000/somewhere-else/")
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_grant"


def test_client_credentials_by_http_basic_work(canvas_sim):
    code = authorize(canvas_sim)["code"]
    response = exchange(canvas_sim, code, auth=(CLIENT_ID, CLIENT_SECRET))
    assert response.status_code == 200, response.text
    assert response.json()["access_token"]


def test_a_wrong_client_secret_is_refused_401_invalid_client(canvas_sim):
    code = authorize(canvas_sim)["code"]
    response = exchange(canvas_sim, code, auth=(CLIENT_ID, "not-the-secret"))
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"
    # The refusal must not have spent the code for the real client.
    assert exchange(canvas_sim, code).status_code == 200


def test_an_unknown_grant_type_is_refused_400_unsupported_grant_type(canvas_sim):
    response = requests.post(
        f"{canvas_sim.base_url}/login/oauth2/token",
        data={"grant_type": "password", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
        timeout=TIMEOUT,
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "unsupported_grant_type"


# -- refresh and revocation ---------------------------------------------------------------------
def test_a_refresh_returns_a_new_access_token_without_a_refresh_token_and_retires_the_old_one(canvas_sim, tokens):
    response = requests.post(
        f"{canvas_sim.base_url}/login/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "refresh_token" not in body
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["user"]["id"] == tokens["user"]["id"]
    assert body["access_token"] != tokens["access_token"]

    assert get_self(canvas_sim, body["access_token"]).status_code == 200
    assert_bad_token(get_self(canvas_sim, tokens["access_token"]), "Invalid access token.")


def test_delete_token_revokes_the_callers_token(canvas_sim, tokens):
    access = tokens["access_token"]
    response = requests.delete(
        f"{canvas_sim.base_url}/login/oauth2/token", headers={"Authorization": f"Bearer {access}"}, timeout=TIMEOUT
    )
    assert response.status_code == 200, response.text
    assert_bad_token(get_self(canvas_sim, access), "Revoked access token.")


def test_a_revoked_tokens_refresh_token_no_longer_works(canvas_sim, tokens):
    requests.delete(
        f"{canvas_sim.base_url}/login/oauth2/token",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=TIMEOUT,
    ).raise_for_status()
    response = requests.post(
        f"{canvas_sim.base_url}/login/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=(CLIENT_ID, CLIENT_SECRET),
        timeout=TIMEOUT,
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_grant"


def test_a_token_with_url_scopes_can_still_revoke_itself(canvas_sim):
    user = canvas_sim.make_user()
    token = canvas_sim.make_token(user["id"], scopes=["url:GET|/api/v1/users/:user_id"])
    response = requests.delete(
        f"{canvas_sim.base_url}/login/oauth2/token", headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT
    )
    assert response.status_code == 200, response.text
    assert_bad_token(get_self(canvas_sim, token), "Revoked access token.")


def test_delete_token_without_a_token_is_refused_unauthenticated(canvas_sim):
    response = requests.delete(f"{canvas_sim.base_url}/login/oauth2/token", timeout=TIMEOUT)
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="canvas-lms"'
    assert response.json() == UNAUTHENTICATED


# -- refusals on the browser side ---------------------------------------------------------------
def test_cancel_redirects_with_access_denied(canvas_sim):
    session = requests.Session()
    query = oauth_query()
    consent = sign_in(canvas_sim, session, query)
    assert 'action="/login/oauth2/deny"' in consent.text
    response = session.post(
        f"{canvas_sim.base_url}/login/oauth2/deny",
        data={"oauth_query": hidden_query(consent)},
        timeout=TIMEOUT,
        allow_redirects=False,
    )
    params = redirect_params(response)
    assert params["error"] == "access_denied"
    assert params["state"] == query["state"]
    assert "code" not in params


def test_response_type_token_redirects_with_unsupported_response_type(canvas_sim):
    query = oauth_query(response_type="token")
    response = requests.get(
        f"{canvas_sim.base_url}/login/oauth2/auth", params=query, timeout=TIMEOUT, allow_redirects=False
    )
    params = redirect_params(response)
    assert response.headers["Location"].startswith(REDIRECT_URI)
    assert params["error"] == "unsupported_response_type"
    assert params["state"] == query["state"]


def test_a_wrong_password_re_renders_the_sign_in_form_with_an_error_and_no_code(canvas_sim):
    session = requests.Session()
    response = sign_in(canvas_sim, session, oauth_query(), password="not-the-password")
    assert response.status_code in {200, 400}
    assert "Location" not in response.headers
    assert 'action="/login/canvas"' in response.text
    assert "Invalid username or password" in response.text
    assert 'action="/login/oauth2/accept"' not in response.text
    assert "code=" not in response.text


def test_an_unknown_client_id_is_refused_without_a_redirect(canvas_sim):
    response = requests.get(
        f"{canvas_sim.base_url}/login/oauth2/auth",
        params=oauth_query(client_id="99999999999999"),
        timeout=TIMEOUT,
        allow_redirects=False,
    )
    assert response.status_code in {400, 401}, response.text
    assert "Location" not in response.headers
    assert response.json()["error"] == "invalid_client"


def test_a_redirect_uri_on_another_host_is_refused_without_a_redirect(canvas_sim):
    for uri in ("http://evil.example/", "http://127.0.0.1.evil.example:8000/", "http://127.0.0.1@evil.example/"):
        response = requests.get(
            f"{canvas_sim.base_url}/login/oauth2/auth",
            params=oauth_query(redirect_uri=uri),
            timeout=TIMEOUT,
            allow_redirects=False,
        )
        assert response.status_code == 400, (uri, response.text)
        assert "Location" not in response.headers
        assert response.json()["error"] == "invalid_request"


# -- tokens on the API --------------------------------------------------------------------------
def test_a_token_with_url_scopes_may_call_only_those_routes(canvas_sim):
    user = canvas_sim.make_user()
    token = canvas_sim.make_token(user["id"], scopes=["url:GET|/api/v1/users/:user_id"])
    headers = {"Authorization": f"Bearer {token}"}

    allowed = requests.get(f"{canvas_sim.base_url}/api/v1/users/{user['id']}", headers=headers, timeout=TIMEOUT)
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["id"] == user["id"]

    refused = requests.get(f"{canvas_sim.base_url}/api/v1/users/self/observees", headers=headers, timeout=TIMEOUT)
    assert refused.status_code == 401, refused.text
    assert refused.json() == {"errors": [{"message": "Insufficient scopes on access token."}]}


def test_an_expired_token_is_refused_with_expired_access_token(canvas_sim):
    user = canvas_sim.make_user()
    token = canvas_sim.make_token(user["id"], expires_in=1)
    time.sleep(1.2)
    assert_bad_token(get_self(canvas_sim, token), "Expired access token.")


def test_an_unknown_token_is_refused_with_invalid_access_token(canvas_sim):
    assert_bad_token(get_self(canvas_sim, secrets.token_urlsafe(32)), "Invalid access token.")


def test_no_token_gets_401_with_www_authenticate_and_the_unauthenticated_body(canvas_sim):
    response = get_self(canvas_sim, None)
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="canvas-lms"'
    assert response.json() == UNAUTHENTICATED
