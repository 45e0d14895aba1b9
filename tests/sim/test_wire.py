"""The simulator on the wire, request by request, against ``shared/canvas-contract.md``.

These talk raw HTTP so that what is checked is exactly what Canvas sends: statuses, bodies,
headers. The portal's client has its own tests in ``tests/canvas/``.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import requests

NOT_AUTHORIZED = {"status": "unauthorized", "errors": [{"message": "user not authorized to perform that action"}]}
NOT_FOUND = {"errors": [{"message": "The specified resource does not exist."}]}


def call(sim, method, path, token=None, **kwargs):
    headers = kwargs.pop("headers", {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.request(method, sim.base_url + path, headers=headers, timeout=kwargs.pop("timeout", 10), **kwargs)


def admin(sim, method, path, **kwargs):
    return call(sim, method, path, sim.admin_token, **kwargs)


def links(response) -> list[tuple[str, str]]:
    return re.findall(r'<([^>]+)>; rel="(\w+)"', response.headers["Link"])


# -- auth -----------------------------------------------------------------------------------------
def test_it_asks_for_authorization_when_no_token_is_sent(canvas_sim):
    response = call(canvas_sim, "GET", "/api/v1/users/self")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="canvas-lms"'
    assert response.json() == {"status": "unauthenticated", "errors": [{"message": "user authorization required"}]}


def test_it_rejects_an_unknown_token_with_the_invalid_token_body(canvas_sim):
    response = call(canvas_sim, "GET", "/api/v1/users/self", "not-a-token")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="canvas-lms"'
    assert response.json() == {"errors": [{"message": "Invalid access token."}]}


def test_it_refuses_a_permission_without_www_authenticate(canvas_sim):
    student = canvas_sim.make_user(student=True)
    response = call(canvas_sim, "GET", "/api/v1/accounts/self/users", student["token"])
    assert response.status_code == 401
    assert "WWW-Authenticate" not in response.headers
    assert response.json() == NOT_AUTHORIZED


def test_it_can_answer_not_authorized_with_403_like_newer_instances(canvas_sim):
    canvas_sim.configure(unauthorized_status=403)
    student = canvas_sim.make_user(student=True)
    response = call(canvas_sim, "GET", "/api/v1/accounts/self/users", student["token"])
    assert response.status_code == 403
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == NOT_AUTHORIZED


# -- users ----------------------------------------------------------------------------------------
def test_it_requires_two_characters_to_search(canvas_sim):
    response = admin(canvas_sim, "GET", "/api/v1/accounts/self/users", params={"search_term": "a"})
    assert response.status_code == 400
    assert response.json() == {
        "errors": [{"field": "search_term", "code": "invalid", "message": "2 or more characters is required"}]
    }


def test_a_numeric_search_finds_the_exact_id_and_every_substring_match(canvas_sim):
    # Demo ids are small; id 12 exists, and SIS ids such as S1012 contain "12" too.
    # Other tests add users whose generated logins contain "12" too: read every page.
    found, url = {}, canvas_sim.base_url + "/api/v1/accounts/self/users?search_term=12&per_page=100"
    while url:
        response = requests.get(url, headers={"Authorization": f"Bearer {canvas_sim.admin_token}"}, timeout=10)
        found.update({user["id"]: user for user in response.json()})
        url = dict((rel, target) for target, rel in links(response)).get("next")
    assert 12 in found
    assert len(found) > 1
    assert any(user["sis_user_id"] == "S1012" for user in found.values())


def test_an_admin_search_matches_login_sis_id_and_email_but_shows_email_only_on_request(canvas_sim):
    user = canvas_sim.make_user(sis_user_id=canvas_sim.unique("SIS-"), email=f"{canvas_sim.unique('mail')}@ex.test")
    by_sis = admin(canvas_sim, "GET", "/api/v1/accounts/self/users", params={"search_term": user["sis_user_id"]})
    assert [u["id"] for u in by_sis.json()] == [user["id"]]
    assert "email" not in by_sis.json()[0]
    by_email = admin(
        canvas_sim,
        "GET",
        "/api/v1/accounts/self/users",
        params={"search_term": user["email"], "include[]": "email"},
    )
    assert by_email.json()[0]["email"] == user["email"]
    assert by_email.json()[0]["login_id"] == user["login"]


def test_it_resolves_every_form_of_user_id(canvas_sim):
    user = canvas_sim.make_user(sis_user_id=canvas_sim.unique("SIS-"))
    for form in (str(user["id"]), f"sis_user_id:{user['sis_user_id']}", f"sis_login_id:{user['login']}"):
        response = admin(canvas_sim, "GET", f"/api/v1/users/{form}")
        assert response.status_code == 200, form
        assert response.json()["id"] == user["id"]
    me = call(canvas_sim, "GET", "/api/v1/users/self", user["token"]).json()
    assert me["id"] == user["id"]
    assert {"first_name", "last_name", "locale", "effective_locale", "avatar_url", "permissions", "email"} <= set(me)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", me["created_at"])


def test_a_deleted_user_is_not_found(canvas_sim):
    user = canvas_sim.make_user()
    assert admin(canvas_sim, "DELETE", f"/api/v1/accounts/self/users/{user['id']}").status_code == 200
    response = admin(canvas_sim, "GET", f"/api/v1/users/{user['id']}")
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_creating_a_user_without_a_pseudonym_says_what_is_missing(canvas_sim):
    response = admin(canvas_sim, "POST", "/api/v1/accounts/self/users", data={"user[name]": "No Login"})
    assert response.status_code == 400
    assert response.json() == {"errors": [{"message": "pseudonym is missing"}]}


def test_a_taken_login_answers_with_the_validation_object(canvas_sim):
    existing = canvas_sim.make_user()
    response = admin(
        canvas_sim,
        "POST",
        "/api/v1/accounts/self/users",
        data={"user[name]": "Again", "pseudonym[unique_id]": existing["login"].upper()},
    )
    assert response.status_code == 400
    assert response.json()["errors"]["pseudonym"]["unique_id"][0]["type"] == "taken"
    assert response.json()["errors"]["user"]["pseudonyms"][0]["type"] == "invalid"


def test_force_self_registration_sends_canvas_registration_mail(canvas_sim):
    email = f"{canvas_sim.unique('parent')}@example.test"
    response = admin(
        canvas_sim,
        "POST",
        "/api/v1/accounts/self/users",
        data={
            "user[name]": "Pat Parent",
            "pseudonym[unique_id]": email,
            "pseudonym[force_self_registration]": "true",
            "communication_channel[type]": "email",
            "communication_channel[address]": email,
        },
    )
    assert response.status_code == 200
    assert set(response.json()) >= {"id", "name", "created_at", "sortable_name", "short_name"}
    assert response.json()["sortable_name"] == "Parent, Pat"
    assert [m["kind"] for m in canvas_sim.messages(to=email)] == ["complete_registration"]


# -- pagination -----------------------------------------------------------------------------------
def test_the_link_header_lists_current_next_first_without_spaces_and_no_last_for_account_users(canvas_sim):
    response = admin(
        canvas_sim,
        "GET",
        "/api/v1/accounts/self/users",
        params={"search_term": "S10", "per_page": 5, "access_token": "ignored-in-links"},
    )
    header = response.headers["Link"]
    assert ", <" not in header
    assert [rel for _, rel in links(response)] == ["current", "next", "first"]
    assert links(response)[1][0].endswith("?search_term=S10&page=2&per_page=5")
    assert "access_token" not in header


def test_a_middle_page_has_prev_and_following_next_reaches_everyone(canvas_sim):
    url = canvas_sim.base_url + "/api/v1/accounts/self/users?search_term=S10&per_page=7"
    seen, pages = [], 0
    while url:
        response = requests.get(url, headers={"Authorization": f"Bearer {canvas_sim.admin_token}"}, timeout=10)
        rels = dict((rel, target) for target, rel in links(response))
        if pages == 1:
            assert "prev" in rels
        seen += [user["id"] for user in response.json()]
        url, pages = rels.get("next"), pages + 1
    assert len(seen) == len(set(seen)) >= 29
    assert pages == -(-len(seen) // 7)


def test_a_page_past_the_end_is_an_empty_list(canvas_sim):
    response = admin(canvas_sim, "GET", "/api/v1/accounts/self/users", params={"search_term": "S10", "page": 99})
    assert response.status_code == 200
    assert response.json() == []


@pytest.mark.parametrize(("asked", "served"), [("0", 1), ("-5", 1), ("lots", 1), ("1000", 100), ("", 10)])
def test_per_page_is_clamped_as_canvas_clamps_it(canvas_sim, asked, served):
    response = admin(canvas_sim, "GET", "/api/v1/accounts/self/users", params={"per_page": asked})
    assert f"per_page={served}>" in response.headers["Link"]


def test_observee_lists_carry_a_last_link(canvas_sim):
    parent = canvas_sim.make_user()
    for _ in range(3):
        student = canvas_sim.make_user(student=True)
        admin(canvas_sim, "PUT", f"/api/v1/users/{parent['id']}/observees/{student['id']}")
    response = call(canvas_sim, "GET", f"/api/v1/users/{parent['id']}/observees?per_page=2", parent["token"])
    assert [rel for _, rel in links(response)] == ["current", "next", "first", "last"]
    assert links(response)[-1][0].endswith("page=2&per_page=2")


# -- pairing codes --------------------------------------------------------------------------------
def test_a_student_gets_a_six_character_code_valid_for_seven_days(canvas_sim):
    student = canvas_sim.make_user(student=True)
    response = call(canvas_sim, "POST", f"/api/v1/users/{student['id']}/observer_pairing_codes", student["token"])
    body = response.json()
    assert response.status_code == 200
    assert re.fullmatch(r"[A-Za-z0-9]{6}", body["code"])
    assert body["user_id"] == student["id"] and body["workflow_state"] == "active"
    expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert abs(expires - (datetime.now(UTC) + timedelta(days=7))) < timedelta(minutes=1)


def test_a_student_with_no_enrollment_gets_the_permission_401(canvas_sim):
    newcomer = canvas_sim.make_user(student=False)
    response = call(canvas_sim, "POST", f"/api/v1/users/{newcomer['id']}/observer_pairing_codes", newcomer["token"])
    assert response.status_code == 401
    assert response.json() == NOT_AUTHORIZED
    as_admin = admin(canvas_sim, "POST", "/api/v1/users/sis_user_id:S1030/observer_pairing_codes")
    assert as_admin.status_code == 401


def test_no_codes_are_made_when_self_registration_is_off(canvas_sim):
    canvas_sim.configure(self_registration="none")
    student = canvas_sim.make_user(student=True)
    response = call(canvas_sim, "POST", f"/api/v1/users/{student['id']}/observer_pairing_codes", student["token"])
    assert response.status_code == 401


def test_a_student_cannot_make_a_code_for_another_student(canvas_sim):
    student, other = canvas_sim.make_user(student=True), canvas_sim.make_user(student=True)
    response = call(canvas_sim, "POST", f"/api/v1/users/{other['id']}/observer_pairing_codes", student["token"])
    assert response.status_code == 401


def new_code(sim, student) -> str:
    return call(sim, "POST", f"/api/v1/users/{student['id']}/observer_pairing_codes", student["token"]).json()["code"]


# -- observation links ----------------------------------------------------------------------------
def test_a_code_links_once_and_then_is_invalid(canvas_sim):
    student, parent, other = (canvas_sim.make_user(student=True), canvas_sim.make_user(), canvas_sim.make_user())
    older, code = new_code(canvas_sim, student), new_code(canvas_sim, student)
    response = call(
        canvas_sim, "POST", f"/api/v1/users/{parent['id']}/observees", parent["token"], data={"pairing_code": code}
    )
    assert response.status_code == 200
    assert response.json()["id"] == student["id"]
    assert response.json()["observation_link_root_account_ids"] == [1]
    again = call(
        canvas_sim, "POST", f"/api/v1/users/{other['id']}/observees", other["token"], data={"pairing_code": code}
    )
    assert again.status_code == 422
    assert again.json() == {"errors": [{"message": "Invalid pairing code."}]}
    # A newer code did not cancel the older one.
    older_use = call(
        canvas_sim, "POST", f"/api/v1/users/{other['id']}/observees", other["token"], data={"pairing_code": older}
    )
    assert older_use.status_code == 200


def test_codes_are_case_sensitive(canvas_sim):
    student, parent = canvas_sim.make_user(student=True), canvas_sim.make_user()
    code = new_code(canvas_sim, student)
    while code.swapcase() == code:  # all digits: nothing to swap
        code = new_code(canvas_sim, student)
    response = call(
        canvas_sim,
        "POST",
        f"/api/v1/users/{parent['id']}/observees",
        parent["token"],
        data={"pairing_code": code.swapcase()},
    )
    assert response.status_code == 422


def test_a_code_is_burnt_even_when_the_link_it_asked_for_is_not_made(canvas_sim):
    student, parent = canvas_sim.make_user(student=True), canvas_sim.make_user()
    code = new_code(canvas_sim, student)
    # The student redeems their own code: Canvas answers 200 with no link, and the code is gone.
    selfish = call(
        canvas_sim, "POST", f"/api/v1/users/{student['id']}/observees", student["token"], data={"pairing_code": code}
    )
    assert selfish.status_code == 200
    assert selfish.json()["observation_link_root_account_ids"] == []
    late = call(
        canvas_sim, "POST", f"/api/v1/users/{parent['id']}/observees", parent["token"], data={"pairing_code": code}
    )
    assert late.status_code == 422


def test_a_bad_guess_costs_200_units_of_throttle(canvas_sim):
    parent = canvas_sim.make_user()
    response = call(
        canvas_sim, "POST", f"/api/v1/users/{parent['id']}/observees", parent["token"], data={"pairing_code": "zzzzzz"}
    )
    assert response.status_code == 422
    assert float(response.headers["X-Request-Cost"]) >= 200
    assert float(response.headers["X-Rate-Limit-Remaining"]) <= 400.5


def test_linking_with_credentials_checks_login_then_password(canvas_sim):
    student, parent = canvas_sim.make_user(student=True), canvas_sim.make_user()
    path = f"/api/v1/users/{parent['id']}/observees"
    unknown = call(
        canvas_sim,
        "POST",
        path,
        parent["token"],
        data={"observee[unique_id]": "nobody-here", "observee[password]": "x"},
    )
    assert unknown.status_code == 422 and unknown.json() == {"errors": [{"message": "Unknown observee."}]}
    wrong = call(
        canvas_sim,
        "POST",
        path,
        parent["token"],
        data={"observee[unique_id]": student["login"], "observee[password]": "nope"},
    )
    assert wrong.status_code == 401 and wrong.json() == {"errors": [{"message": "Invalid credentials provided."}]}
    right = call(
        canvas_sim,
        "POST",
        path,
        parent["token"],
        data={"observee[unique_id]": student["login"], "observee[password]": student["password"]},
    )
    assert right.status_code == 200 and right.json()["id"] == student["id"]


def test_an_admin_put_links_idempotently_and_only_admins_may(canvas_sim):
    student, parent = canvas_sim.make_user(student=True), canvas_sim.make_user()
    path = f"/api/v1/users/{parent['id']}/observees/{student['id']}"
    assert call(canvas_sim, "PUT", path, parent["token"]).status_code == 401
    first, second = admin(canvas_sim, "PUT", path), admin(canvas_sim, "PUT", path)
    assert first.status_code == second.status_code == 200
    observees = call(canvas_sim, "GET", f"/api/v1/users/{parent['id']}/observees", parent["token"]).json()
    assert [o["id"] for o in observees] == [student["id"]]


def test_unlink_soft_deletes_and_a_relink_restores_without_duplicates(canvas_sim):
    student, parent = canvas_sim.make_user(student=True), canvas_sim.make_user()
    path = f"/api/v1/users/{parent['id']}/observees/{student['id']}"
    admin(canvas_sim, "PUT", path)
    assert call(canvas_sim, "GET", path, parent["token"]).status_code == 200
    removed = call(canvas_sim, "DELETE", path, parent["token"])
    assert removed.status_code == 200 and removed.json()["id"] == student["id"]
    assert call(canvas_sim, "GET", path, parent["token"]).json() == NOT_FOUND
    assert call(canvas_sim, "DELETE", path, parent["token"]).status_code == 404
    admin(canvas_sim, "PUT", path)
    observers = call(canvas_sim, "GET", f"/api/v1/users/{student['id']}/observers", student["token"]).json()
    assert [o["id"] for o in observers] == [parent["id"]]
    assert (
        call(canvas_sim, "GET", f"/api/v1/users/{student['id']}/observers/{parent['id']}", student["token"]).status_code
        == 200
    )


def test_a_link_enrols_the_observer_in_the_students_courses(canvas_sim):
    student, parent = canvas_sim.make_user(student=True), canvas_sim.make_user()
    admin(canvas_sim, "PUT", f"/api/v1/users/{parent['id']}/observees/{student['id']}")
    course = admin(canvas_sim, "GET", "/api/v1/courses/sis_course_id:SIM-DEFAULT").json()
    # The session's simulator holds many observers by now: read every page.
    pairs = set()
    url = f"{canvas_sim.base_url}/api/v1/courses/{course['id']}/enrollments?type[]=ObserverEnrollment&per_page=100"
    while url:
        page = requests.get(url, headers={"Authorization": f"Bearer {canvas_sim.admin_token}"}, timeout=10)
        pairs |= {(e["user_id"], e["associated_user_id"]) for e in page.json()}
        url = dict((rel, target) for target, rel in links(page)).get("next")
    assert (parent["id"], student["id"]) in pairs


def test_links_are_scoped_to_root_accounts_the_users_share(canvas_sim):
    student = canvas_sim.make_user(student=True, accounts=[2])
    parent = canvas_sim.make_user(accounts=[2])
    loner = canvas_sim.make_user()
    both = admin(
        canvas_sim, "PUT", f"/api/v1/users/{parent['id']}/observees/{student['id']}", data={"root_account_id": "all"}
    )
    assert both.json()["observation_link_root_account_ids"] == [1, 2]
    code = new_code(canvas_sim, student)
    # A user who is only in district 1 can redeem, but gets a link only where both belong.
    one = call(
        canvas_sim,
        "POST",
        f"/api/v1/users/{loner['id']}/observees",
        loner["token"],
        data={"pairing_code": code, "root_account_id": "2"},
    )
    assert one.status_code == 200
    assert one.json()["observation_link_root_account_ids"] == []


# -- throttle and faults --------------------------------------------------------------------------
def test_every_answer_reports_its_cost_and_what_remains(canvas_sim):
    response = admin(canvas_sim, "GET", "/api/v1/users/self")
    assert float(response.headers["X-Request-Cost"]) >= 0
    assert float(response.headers["X-Rate-Limit-Remaining"]) <= 600


def test_about_twelve_requests_in_flight_fill_the_bucket(canvas_sim):
    canvas_sim.configure(latency_ms=1500)
    user = canvas_sim.make_user()
    with ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(lambda _: call(canvas_sim, "GET", "/api/v1/users/self", user["token"]), range(20)))
    throttled = [r for r in responses if r.status_code == 403]
    served = [r for r in responses if r.status_code == 200]
    assert 9 <= len(served) <= 12
    assert len(served) + len(throttled) == 20
    assert throttled[0].headers["Content-Type"].startswith("text/plain")
    assert throttled[0].text == "403 Forbidden (Rate Limit Exceeded)\n"
    # Another token has its own bucket.
    assert call(canvas_sim, "GET", "/api/v1/users/self", canvas_sim.make_user()["token"]).status_code == 200


def test_the_stats_count_requests_by_caller_route_and_status_and_the_throttles_403s(canvas_sim):
    canvas_sim.configure(latency_ms=600)
    user = canvas_sim.make_user()
    canvas_sim.stats_reset()
    admin(canvas_sim, "GET", "/api/v1/users/self")
    admin(canvas_sim, "GET", "/api/v1/users/0")
    with ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(lambda _: call(canvas_sim, "GET", "/api/v1/users/self", user["token"]), range(16)))

    stats = canvas_sim.stats()
    counted = {(r["caller"], r["method"], r["route"], r["status"]): r["count"] for r in stats["requests"]}
    throttled = sum(r.status_code == 403 for r in responses)
    assert counted[("admin", "GET", "/api/v1/users/:user_id", 200)] == 1
    assert counted[("admin", "GET", "/api/v1/users/:user_id", 404)] == 1
    assert counted[("user", "GET", "/api/v1/users/:user_id", 200)] == 16 - throttled
    assert stats["throttled"] == {"user": throttled} and throttled > 0
    # The 403s answer at once, so the served requests were in flight together.
    assert 9 <= stats["peak_in_flight"]["user"] <= 16
    assert canvas_sim.stats_reset()["requests"] == []


def test_fifty_slow_requests_are_served_at_once(canvas_sim):
    canvas_sim.configure(latency_ms=2000, throttle_enabled=False)
    user = canvas_sim.make_user()
    # Served one after another these would take 120 s and each client gives up after 15 s.
    with ThreadPoolExecutor(60) as pool:
        responses = list(
            pool.map(lambda _: call(canvas_sim, "GET", "/api/v1/users/self", user["token"], timeout=15), range(60))
        )
    assert [r.status_code for r in responses] == [200] * 60


def test_an_injected_500_happens_before_any_effect(canvas_sim):
    canvas_sim.configure(error_rate=1.0)
    login = f"{canvas_sim.unique('ghost')}@example.test"
    response = admin(canvas_sim, "POST", "/api/v1/accounts/self/users", data={"pseudonym[unique_id]": login})
    assert response.status_code == 500
    assert response.json()["errors"] == [{"message": "An error occurred."}]
    canvas_sim.reset()
    assert admin(canvas_sim, "GET", f"/api/v1/users/sis_login_id:{login}").status_code == 404


def test_a_hang_does_the_work_but_answers_too_late(canvas_sim):
    canvas_sim.configure(hang_rate=1.0, hang_seconds=2)
    login = f"{canvas_sim.unique('late')}@example.test"
    with pytest.raises(requests.ReadTimeout):
        admin(canvas_sim, "POST", "/api/v1/accounts/self/users", data={"pseudonym[unique_id]": login}, timeout=0.5)
    canvas_sim.reset()
    assert admin(canvas_sim, "GET", f"/api/v1/users/sis_login_id:{login}").status_code == 200


def test_the_control_api_needs_the_admin_token(canvas_sim):
    response = requests.post(canvas_sim.base_url + "/__sim__/config", json={"latency_ms": 5}, timeout=5)
    assert response.status_code == 401


def test_the_control_api_lists_users_with_their_logins_and_active_observees(canvas_sim):
    student, parent = canvas_sim.make_user(student=True), canvas_sim.make_user()
    gone = canvas_sim.make_user(student=True)
    for child in (student, gone):
        code = new_code(canvas_sim, child)
        call(
            canvas_sim, "POST", f"/api/v1/users/{parent['id']}/observees", parent["token"], data={"pairing_code": code}
        )
    admin(canvas_sim, "DELETE", f"/api/v1/users/{parent['id']}/observees/{gone['id']}")

    [listed] = canvas_sim.users(email=parent["login"].upper())
    assert (listed["id"], listed["email"]) == (parent["id"], parent["login"])
    assert [login["unique_id"] for login in listed["logins"]] == [parent["login"]]
    [observee] = listed["observees"]
    assert (observee["student_id"], observee["root_account_id"]) == (student["id"], 1)
    # When the link became active, to the microsecond (Canvas's own timestamps are to the second).
    assert time.time() - 60 < observee["linked_at"] <= time.time()
    assert parent["id"] in {user["id"] for user in canvas_sim.users()}
    assert requests.get(canvas_sim.base_url + "/__sim__/users", timeout=5).status_code == 401
