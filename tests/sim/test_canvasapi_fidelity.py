"""Fidelity from outside: the third-party ``canvasapi`` client, unchanged, against the simulator.

Every call the portal makes (see /work/shared/canvas-contract.md) is made here through canvasapi's
public API, so a simulator that drifts from what Canvas answers shows up as canvasapi misbehaving:
a wrong exception class, a list that stops after one page, an attribute that is missing.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
from canvasapi import Canvas
from canvasapi.account import Account
from canvasapi.exceptions import (
    BadRequest,
    Forbidden,
    InvalidAccessToken,
    ResourceDoesNotExist,
    Unauthorized,
    UnprocessableEntity,
)

pytestmark = pytest.mark.filterwarnings("ignore:Canvas may respond unexpectedly:UserWarning")

ROOT_ACCOUNT_ID = 1
SIS_DONE = {"imported", "imported_with_messages", "failed", "failed_with_messages"}
RATE_LIMITED_BODY = "403 Forbidden (Rate Limit Exceeded)\n"


# -- helpers ------------------------------------------------------------------------------------
def client(canvas_sim, token: str) -> Canvas:
    return Canvas(canvas_sim.base_url, token)


@pytest.fixture
def admin(canvas_sim) -> Canvas:
    return client(canvas_sim, canvas_sim.admin_token)


@pytest.fixture
def account(admin):
    return admin.get_account(ROOT_ACCOUNT_ID)


def as_user(canvas_sim, made: dict):
    """The canvasapi User for someone made with ``canvas_sim.make_user``, acting with their own token."""
    return client(canvas_sim, made["token"]).get_current_user()


def ids(users) -> list[int]:
    return [user.id for user in users]


def wait_for_import(account, sis_import, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        current = account.get_sis_import(sis_import.id)
        if current.workflow_state in SIS_DONE:
            return current
        if time.monotonic() > deadline:
            pytest.fail(f"SIS import {sis_import.id} still {current.workflow_state!r} after {timeout} s")
        time.sleep(0.1)


# -- accounts and user search -------------------------------------------------------------------
def test_canvasapi_gets_the_account_by_id_and_by_self(admin):
    by_id = admin.get_account(ROOT_ACCOUNT_ID)
    assert by_id.id == ROOT_ACCOUNT_ID
    assert by_id.name == "Maple Grove School District"

    # canvasapi 3.6 refuses get_account("self") client-side (obj_or_id only allows "self" for users),
    # so the "self" form goes through canvasapi's own requester, unchanged.
    with pytest.raises(TypeError):
        admin.get_account("self")
    by_self = Account(admin._Canvas__requester, admin._Canvas__requester.request("GET", "accounts/self").json())
    assert by_self.id == ROOT_ACCOUNT_ID
    assert by_self.name == by_id.name
    assert [user.id for user in by_self.get_users(search_term="Ava Thompson")] == [
        admin.get_user("S1001", "sis_user_id").id
    ]


def test_canvasapi_finds_users_by_search_across_pages(canvas_sim, account):
    word = canvas_sim.unique("fidsearch")
    made = [canvas_sim.make_user(name=f"Fidelity {word} {number:02d}") for number in range(12)]

    pages = []
    account._requester._session.hooks["response"].append(lambda response, **_: pages.append(response))

    found = list(account.get_users(search_term=word, per_page=3, include=["email"]))

    # 12 matches at 3 a page: canvasapi had to follow rel="next" three times to see them all.
    assert [response.status_code for response in pages] == [200] * 4
    assert [set(response.links) for response in pages] == [
        {"current", "next", "first"},
        {"current", "next", "prev", "first"},
        {"current", "next", "prev", "first"},
        {"current", "prev", "first"},  # no "last": the account users list is not counted
    ]
    assert sorted(ids(found)) == sorted(user["id"] for user in made)
    assert len(set(ids(found))) == len(found), "a user came back on two pages"
    # Default order is sortable_name, then id.
    assert ids(found) == ids(sorted(found, key=lambda user: (user.sortable_name.lower(), user.id)))
    # An admin sees login and SIS ids.
    logins = {user["id"]: user["login"] for user in made}
    assert all(user.login_id == logins[user.id] for user in found)
    emails = {user["id"]: user["email"] for user in made}
    assert all(user.email == emails[user.id] for user in found)


def test_canvasapi_search_by_a_number_returns_the_exact_id_among_other_matches(admin, account):
    exact = admin.get_user(10)

    found = list(account.get_users(search_term="10"))

    assert exact.id in ids(found)
    # ...alongside substring matches (the demo students' SIS ids S1001... contain "10"),
    # so the caller must pick the exact match itself.
    others = [user for user in found if user.id != exact.id]
    assert others
    assert any("10" in (user.sis_user_id or "") for user in others)


def test_canvasapi_reports_a_one_letter_search_as_bad_request(account):
    with pytest.raises(BadRequest) as caught:
        list(account.get_users(search_term="a"))
    assert "2 or more characters is required" in str(caught.value)


# -- creating users -----------------------------------------------------------------------------
def test_canvasapi_creates_a_user_with_login_profile_and_email(canvas_sim, admin, account):
    key = canvas_sim.unique("fidcreate")
    created = account.create_user(
        pseudonym={"unique_id": f"{key}@example.test", "password": "long-enough-1", "sis_user_id": f"SIS-{key}"},
        user={"name": f"Created {key}", "locale": "fr"},
        communication_channel={"type": "email", "address": f"{key}@mail.example.test", "skip_confirmation": True},
    )

    assert isinstance(created.id, int)
    assert created.name == f"Created {key}"
    assert created.sortable_name == f"{key}, Created"
    assert created.login_id == f"{key}@example.test"
    assert created.sis_user_id == f"SIS-{key}"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", created.created_at)

    shown = admin.get_user(created.id)
    assert shown.email == f"{key}@mail.example.test"
    assert shown.locale == "fr"
    assert (shown.first_name, shown.last_name) == ("Created", key)
    assert admin.get_user(f"SIS-{key}", "sis_user_id").id == created.id
    assert admin.get_user(f"{key}@example.test", "sis_login_id").id == created.id


def test_canvasapi_raises_bad_request_with_taken_for_a_duplicate_login(canvas_sim, account):
    login = canvas_sim.unique("fiddup") + "@example.test"
    account.create_user(pseudonym={"unique_id": login}, user={"name": "First Holder"})

    with pytest.raises(BadRequest) as caught:
        account.create_user(pseudonym={"unique_id": login.upper()}, user={"name": "Second Holder"})

    assert "taken" in str(caught.value)
    errors = json.loads(caught.value.message)["errors"]
    assert errors["pseudonym"]["unique_id"][0]["type"] == "taken"
    assert errors["user"]["pseudonyms"][0]["type"] == "invalid"


def test_canvasapi_creates_an_observer_and_links_them_by_pairing_code_in_one_call(canvas_sim, admin, account):
    student = canvas_sim.make_user(student=True)
    code = as_user(canvas_sim, student).create_pairing_code().code
    key = canvas_sim.unique("fidparent")

    parent = account.create_user(
        pseudonym={"unique_id": f"{key}@example.test", "password": "parent-pass-1"},
        user={"name": f"Parent {key}", "initial_enrollment_type": "observer"},
        pairing_code={"code": code},
    )

    observees = list(admin.get_user(parent.id).get_observees())
    assert ids(observees) == [student["id"]]
    assert observees[0].observation_link_root_account_ids == [ROOT_ACCOUNT_ID]
    # The code was consumed by that one call.
    other_parent = as_user(canvas_sim, canvas_sim.make_user())
    with pytest.raises(UnprocessableEntity) as caught:
        other_parent.add_observee_with_credentials(pairing_code=code)
    assert "Invalid pairing code." in str(caught.value)


def test_canvasapi_refuses_to_create_an_observer_with_an_invalid_pairing_code(canvas_sim, account):
    key = canvas_sim.unique("fidbadcode")
    with pytest.raises(BadRequest) as caught:
        account.create_user(
            pseudonym={"unique_id": f"{key}@example.test"},
            user={"name": f"Parent {key}", "initial_enrollment_type": "observer"},
            pairing_code={"code": "zzzzzz"},
        )
    errors = json.loads(caught.value.message)["errors"]
    assert errors["pairing_code"]["code"][0]["type"] == "invalid"


# -- reading users ------------------------------------------------------------------------------
def test_canvasapi_gets_users_by_id_sis_id_and_self(canvas_sim, admin):
    by_sis = admin.get_user("S1001", "sis_user_id")
    assert by_sis.name == "Ava Thompson"
    assert by_sis.sis_user_id == "S1001"

    by_id = admin.get_user(by_sis.id)
    assert (by_id.id, by_id.name, by_id.sortable_name) == (by_sis.id, "Ava Thompson", "Thompson, Ava")
    assert by_id.effective_locale
    assert (by_id.first_name, by_id.last_name) == ("Ava", "Thompson")
    assert isinstance(by_id.permissions, dict)

    me = admin.get_user("self")
    current = admin.get_current_user()
    assert me.id == current.id
    assert current.name == "Portal Integration"

    made = canvas_sim.make_user()
    assert client(canvas_sim, made["token"]).get_current_user().id == made["id"]


def test_canvasapi_raises_resource_does_not_exist_for_missing_and_deleted_users(canvas_sim, admin, account):
    with pytest.raises(ResourceDoesNotExist):
        admin.get_user(999_999_999)
    with pytest.raises(ResourceDoesNotExist):
        admin.get_user("NO-SUCH-SIS-ID", "sis_user_id")

    doomed = canvas_sim.make_user()
    assert admin.get_user(doomed["id"]).id == doomed["id"]
    account.delete_user(doomed["id"])
    with pytest.raises(ResourceDoesNotExist):
        admin.get_user(doomed["id"])
    with pytest.raises(ResourceDoesNotExist):
        admin.get_user(doomed["login"], "sis_login_id")
    with pytest.raises(InvalidAccessToken):
        client(canvas_sim, doomed["token"]).get_current_user()


# -- pairing codes ------------------------------------------------------------------------------
def test_canvasapi_creates_a_pairing_code_as_the_student_and_as_an_admin(canvas_sim, admin):
    student = canvas_sim.make_user(student=True)

    own = as_user(canvas_sim, student).create_pairing_code()
    by_admin = admin.get_user(student["id"]).create_pairing_code()

    for code in (own, by_admin):
        assert code.user_id == student["id"]
        assert re.fullmatch(r"[A-Za-z0-9]{6}", code.code)
        assert code.workflow_state == "active"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", code.expires_at)
        left = code.expires_at_date - datetime.now(UTC)
        assert timedelta(days=7) - timedelta(minutes=5) < left <= timedelta(days=7)
    assert own.code != by_admin.code

    # A new code does not cancel the older one: two parents, two codes, two links.
    for code in (own, by_admin):
        parent = as_user(canvas_sim, canvas_sim.make_user())
        linked = parent.add_observee_with_credentials(pairing_code=code.code)
        assert linked.id == student["id"]
        assert linked.observation_link_root_account_ids == [ROOT_ACCOUNT_ID]


def test_canvasapi_raises_unauthorized_not_invalid_token_for_a_student_with_no_enrollment(canvas_sim, admin):
    unenrolled = canvas_sim.make_user(student=False)

    with pytest.raises(Unauthorized) as own:
        as_user(canvas_sim, unenrolled).create_pairing_code()
    with pytest.raises(Unauthorized) as by_admin:
        admin.get_user("S1030", "sis_user_id").create_pairing_code()  # Ivy Newcomer, not enrolled yet

    for caught in (own, by_admin):
        # A permission 401 carries no WWW-Authenticate, so canvasapi must not call it a bad token.
        assert not isinstance(caught.value, InvalidAccessToken)
        assert caught.value.message == [{"message": "user not authorized to perform that action"}]


# -- observees and observers --------------------------------------------------------------------
def test_canvasapi_links_by_credentials_then_lists_shows_and_removes_the_observee(canvas_sim, admin):
    student = canvas_sim.make_user(student=True, password="student-pass-1")
    parent = as_user(canvas_sim, canvas_sim.make_user())

    linked = parent.add_observee_with_credentials(
        observee={"unique_id": student["login"], "password": "student-pass-1"}
    )
    assert linked.id == student["id"]
    assert linked.name == student["name"]
    assert linked.observation_link_root_account_ids == [ROOT_ACCOUNT_ID]

    # Linking again is 200 with no duplicate.
    parent.add_observee_with_credentials(observee={"unique_id": student["login"], "password": "student-pass-1"})
    observees = list(parent.get_observees())
    assert ids(observees) == [student["id"]]
    assert observees[0].observation_link_root_account_ids == [ROOT_ACCOUNT_ID]

    shown = parent.show_observee(student["id"])
    assert shown.id == student["id"]
    assert shown.observation_link_root_account_ids == [ROOT_ACCOUNT_ID]

    observers = list(as_user(canvas_sim, student).get_observers())
    assert ids(observers) == [parent.id]
    assert ids(admin.get_user(student["id"]).get_observers()) == [parent.id]

    removed = parent.remove_observee(student["id"])
    assert removed.id == student["id"]
    assert list(parent.get_observees()) == []
    with pytest.raises(ResourceDoesNotExist):
        parent.show_observee(student["id"])
    with pytest.raises(ResourceDoesNotExist):
        parent.remove_observee(student["id"])


def test_canvasapi_reports_wrong_observee_credentials_and_unknown_logins(canvas_sim):
    student = canvas_sim.make_user(student=True, password="student-pass-1")
    parent = as_user(canvas_sim, canvas_sim.make_user())

    with pytest.raises(Unauthorized) as wrong_password:
        parent.add_observee_with_credentials(observee={"unique_id": student["login"], "password": "nope-nope"})
    assert not isinstance(wrong_password.value, InvalidAccessToken)
    assert wrong_password.value.message == [{"message": "Invalid credentials provided."}]

    with pytest.raises(UnprocessableEntity) as unknown:
        parent.add_observee_with_credentials(observee={"unique_id": "nobody-at-all@example.test", "password": "x"})
    assert "Unknown observee." in str(unknown.value)

    with pytest.raises(UnprocessableEntity) as bad_code:
        parent.add_observee_with_credentials(pairing_code="000000")
    assert "Invalid pairing code." in str(bad_code.value)
    assert list(parent.get_observees()) == []


def test_canvasapi_links_by_admin_put_idempotently_and_pages_through_observees(canvas_sim, admin):
    parent = canvas_sim.make_user()
    family = canvas_sim.unique("fidfamily")
    # Same last name, so sortable_name orders them by first name: Akid, Bkid, Ckid.
    students = [canvas_sim.make_user(student=True, name=f"{letter}kid {family}") for letter in "ABC"]
    observer = admin.get_user(parent["id"])

    for student in students:
        first = observer.add_observee(student["id"])
        again = observer.add_observee(student["id"])
        assert first.id == again.id == student["id"]
        assert again.observation_link_root_account_ids == [ROOT_ACCOUNT_ID]

    # One a page: canvasapi must follow rel="next" to see all three, each once.
    observees = list(observer.get_observees(per_page=1))
    assert ids(observees) == [student["id"] for student in students]
    assert all(user.observation_link_root_account_ids == [ROOT_ACCOUNT_ID] for user in observees)

    # The admin removes one link; the other two stay.
    assert observer.remove_observee(students[1]["id"]).id == students[1]["id"]
    assert ids(observer.get_observees(per_page=1)) == [students[0]["id"], students[2]["id"]]


def test_canvasapi_raises_unauthorized_when_a_non_admin_links_without_a_code(canvas_sim):
    student = canvas_sim.make_user(student=True)
    parent = as_user(canvas_sim, canvas_sim.make_user())

    with pytest.raises(Unauthorized):
        parent.add_observee(student["id"])
    assert list(parent.get_observees()) == []


# -- courses and enrollments --------------------------------------------------------------------
def test_canvasapi_creates_a_course_and_enrolment_that_unlocks_pairing_codes(canvas_sim, admin, account):
    word = canvas_sim.unique("fidcourse")
    course = account.create_course(course={"name": f"Fidelity {word}", "course_code": word})
    assert course.name == f"Fidelity {word}"
    assert course.course_code == word
    assert course.account_id == ROOT_ACCOUNT_ID

    newcomer = canvas_sim.make_user(student=False)
    student = admin.get_user(newcomer["id"])
    with pytest.raises(Unauthorized):
        student.create_pairing_code()

    enrollment = course.enroll_user(student, enrollment={"type": "StudentEnrollment", "enrollment_state": "active"})
    assert enrollment.user_id == newcomer["id"]
    assert enrollment.course_id == course.id
    assert enrollment.type == "StudentEnrollment"
    assert enrollment.enrollment_state == "active"

    code = as_user(canvas_sim, newcomer).create_pairing_code()
    assert code.user_id == newcomer["id"]

    # A new link enrols the observer in the student's active courses.
    parent = as_user(canvas_sim, canvas_sim.make_user())
    parent.add_observee_with_credentials(pairing_code=code.code)
    observers = list(course.get_enrollments(type=["ObserverEnrollment"]))
    assert [(e.user_id, e.associated_user_id) for e in observers] == [(parent.id, newcomer["id"])]


# -- SIS imports --------------------------------------------------------------------------------
def sis_files(word: str) -> tuple[str, str, str, str]:
    parent_sis, student_sis = f"P-{word}", f"S-{word}"
    users_csv = (
        "user_id,login_id,status,first_name,last_name,email,declared_user_type\n"
        f"{student_sis},{word}-kid,active,Kid,{word},{word}-kid@example.test,\n"
        f"{parent_sis},{word}-parent@example.test,active,Parent,{word},{word}-parent@example.test,observer\n"
    )
    observers_csv = f"observer_id,student_id,status\n{parent_sis},{student_sis},active\n"
    return parent_sis, student_sis, users_csv, observers_csv


def test_canvasapi_imports_users_then_observer_links_from_two_csv_files(canvas_sim, admin, account, tmp_path):
    word = canvas_sim.unique("fidsis")
    parent_sis, student_sis, users_csv, observers_csv = sis_files(word)
    (tmp_path / "users.csv").write_text(users_csv)
    (tmp_path / "user_observers.csv").write_text(observers_csv)

    for name in ("users.csv", "user_observers.csv"):
        started = account.create_sis_import(str(tmp_path / name), import_type="instructure_csv")
        assert isinstance(started.id, int)
        done = wait_for_import(account, started)
        assert done.workflow_state == "imported", done.processing_errors
        assert done.processing_errors == []

    parent = admin.get_user(parent_sis, "sis_user_id")
    student = admin.get_user(student_sis, "sis_user_id")
    assert parent.name == f"Parent {word}"
    observees = list(parent.get_observees())
    assert ids(observees) == [student.id]
    assert observees[0].observation_link_root_account_ids == [ROOT_ACCOUNT_ID]


def test_canvasapi_imports_a_zip_and_reports_bad_rows_as_processing_errors(canvas_sim, admin, account, tmp_path):
    word = canvas_sim.unique("fidzip")
    parent_sis, student_sis, users_csv, observers_csv = sis_files(word)
    observers_csv += f"{parent_sis},NO-SUCH-{word},active\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("user_observers.csv", observers_csv)  # out of order on purpose
        archive.writestr("users.csv", users_csv)
    (tmp_path / "batch.zip").write_bytes(buffer.getvalue())

    done = wait_for_import(account, account.create_sis_import(str(tmp_path / "batch.zip")))

    assert done.workflow_state == "imported_with_messages"
    assert len(done.processing_errors) == 1
    file_name, message = done.processing_errors[0]
    assert file_name == "user_observers.csv"
    assert f"NO-SUCH-{word}" in message
    parent = admin.get_user(parent_sis, "sis_user_id")
    assert ids(parent.get_observees()) == [admin.get_user(student_sis, "sis_user_id").id]


# -- auth errors and throttling -----------------------------------------------------------------
def test_canvasapi_raises_invalid_access_token_for_unknown_and_expired_tokens(canvas_sim):
    with pytest.raises(InvalidAccessToken) as unknown:
        client(canvas_sim, "not-a-real-token").get_current_user()
    assert unknown.value.message == [{"message": "Invalid access token."}]

    user = canvas_sim.make_user()
    expired = canvas_sim.make_token(user["id"], expires_in=1)
    time.sleep(1.1)
    with pytest.raises(InvalidAccessToken) as late:
        client(canvas_sim, expired).get_current_user()
    assert late.value.message == [{"message": "Expired access token."}]


def test_canvasapi_sees_the_throttle_as_a_forbidden_rate_limit_exceeded(canvas_sim):
    # Canvas throttles with 403 text/plain, never 429. canvasapi 3.6 only maps 429 to its
    # RateLimitExceeded class, so against Canvas (and a faithful simulator) it raises its parent
    # class Forbidden, with Canvas's exact body as the message.
    token = canvas_sim.make_user()["token"]
    canvas_sim.configure(throttle_hwm=100, throttle_up_front=60, latency_ms=300)
    clients = [client(canvas_sim, token) for _ in range(3)]
    barrier = threading.Barrier(len(clients))
    results: list[object] = [None] * len(clients)

    def call(index: int) -> None:
        barrier.wait()
        try:
            results[index] = clients[index].get_user("self")
        except Exception as exc:  # noqa: BLE001 - collected and asserted on below
            results[index] = exc

    threads = [threading.Thread(target=call, args=(index,)) for index in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    refused = [result for result in results if isinstance(result, Exception)]
    served = [result for result in results if not isinstance(result, Exception)]
    assert served, f"no request got through: {results}"
    assert refused, "three concurrent requests at 60 units each should overflow a high-water mark of 100"
    for exc in refused:
        assert isinstance(exc, Forbidden), repr(exc)
        assert exc.message == RATE_LIMITED_BODY


def test_canvasapi_is_throttled_after_a_few_wrong_pairing_code_guesses(canvas_sim):
    # Each wrong guess costs 200 extra units against a high-water mark of 600: about three fill the bucket.
    parent = as_user(canvas_sim, canvas_sim.make_user())
    outcomes = []
    for guess in ("aaaaa1", "aaaaa2", "aaaaa3", "aaaaa4", "aaaaa5"):
        try:
            parent.add_observee_with_credentials(pairing_code=guess)
        except Forbidden as exc:
            outcomes.append(exc)
            break
        except UnprocessableEntity as exc:
            outcomes.append(exc)

    assert all(isinstance(exc, UnprocessableEntity) for exc in outcomes[:2]), outcomes
    assert isinstance(outcomes[-1], Forbidden), outcomes
    assert outcomes[-1].message == RATE_LIMITED_BODY
