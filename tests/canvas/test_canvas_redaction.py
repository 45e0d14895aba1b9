"""Tokens, pairing codes and passwords never reach a log line or an error message."""

from __future__ import annotations

import logging

import pytest

from linking.canvas import CanvasError, CanvasInvalidPairingCode, redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/api/v1/users/self?access_token=abc123", "/api/v1/users/self?access_token=[redacted]"),
        ("/x?per_page=100&code=Ab3xZ9&page=2", "/x?per_page=100&code=[redacted]&page=2"),
        ("pairing_code=Ab3xZ9", "pairing_code=[redacted]"),
        ("/x?pairing_code%5Bcode%5D=Ab3xZ9", "/x?pairing_code%5Bcode%5D=[redacted]"),
        ("observee[password]=hunter2&observee[unique_id]=kid", "observee[password]=[redacted]&observee[unique_id]=kid"),
        ("/t?refresh_token=r&client_secret=s", "/t?refresh_token=[redacted]&client_secret=[redacted]"),
        ("Authorization: Bearer 7~abcDEF.ghi", "Authorization: Bearer [redacted]"),
        ("/api/v1/accounts/self/users?search_term=ann&include%5B%5D=email", "unchanged"),
        ("/api/v1/users/sis_login_id:ann@example.test", "unchanged"),
        ("/x?encoded_code=1&codebook=2", "unchanged"),
    ],
)
def test_redact_hides_secret_values_and_keeps_everything_else(text, expected):
    assert redact(text) == (text if expected == "unchanged" else expected)


def test_no_log_line_or_error_carries_a_token_code_or_password(canvas_sim, admin, make_client, student, caplog):
    caplog.set_level(logging.DEBUG)  # every logger, urllib3's included
    password = "hunter2-never-logged"
    as_student = make_client(student["token"])
    code = as_student.create_pairing_code("self")
    second = as_student.create_pairing_code("self")
    parent = canvas_sim.make_user()
    errors: list[CanvasError] = []

    admin.link_with_pairing_code(parent["id"], code.code)
    try:
        admin.link_with_pairing_code(parent["id"], code.code)
    except CanvasInvalidPairingCode as exc:
        errors.append(exc)
    admin.create_observer(name="New Parent", email=f"{canvas_sim.unique('p')}@example.test", pairing_code=second.code)
    try:  # linking by the student's login and password, with a wrong password
        admin.request(
            "POST",
            f"/api/v1/users/{parent['id']}/observees",
            data={"observee[unique_id]": student["login"], "observee[password]": password},
        )
    except CanvasError as exc:
        errors.append(exc)
    try:
        make_client(canvas_sim.admin_token + "x").get_user("self")
    except CanvasError as exc:
        errors.append(exc)

    secrets = [student["token"], canvas_sim.admin_token, code.code, second.code, password]
    logged = [record.getMessage() + repr(record.__dict__) for record in caplog.records]
    assert [type(e).__name__ for e in errors] == [
        "CanvasInvalidPairingCode",
        "CanvasNotAuthorized",
        "CanvasInvalidToken",
    ]
    assert any("observees" in line for line in logged)
    for secret in secrets:
        assert not [line for line in logged if secret in line], f"a log line holds {secret[:3]}..."
        assert not [e for e in errors if secret in str(e) or secret in repr(e.__dict__)]


def test_secrets_in_a_query_are_redacted_from_the_clients_log(admin, canvas_log):
    admin.request("GET", "/api/v1/users/self", params={"password": "hunter2-in-a-url", "code": "Ab3xZ9"})

    [record] = canvas_log.attempts()
    assert record.canvas_path == "/api/v1/users/self?password=[redacted]&code=[redacted]"
    assert "hunter2" not in record.getMessage() and "Ab3xZ9" not in record.getMessage()
