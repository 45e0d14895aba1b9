"""Finding users exactly (despite Canvas's fuzzy search), paging through them, and creating parents."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from linking.canvas import CanvasAmbiguousMatch


def test_it_finds_a_user_by_sis_id_exactly(canvas_sim, admin):
    sis_id = canvas_sim.unique("SIS")
    wanted = canvas_sim.make_user(sis_user_id=sis_id)
    canvas_sim.make_user(sis_user_id=sis_id + "0")

    found = admin.find_user_by_sis_id(sis_id)

    assert found["id"] == wanted["id"]
    assert found["sis_user_id"] == sis_id


def test_it_finds_a_user_by_an_sis_id_that_needs_quoting(canvas_sim, admin):
    sis_id = canvas_sim.unique("S 10+") + "&x=1"
    wanted = canvas_sim.make_user(sis_user_id=sis_id)

    assert admin.find_user_by_sis_id(sis_id)["id"] == wanted["id"]


def test_it_finds_a_user_by_an_sis_id_with_a_slash(canvas_sim, admin):
    sis_id = canvas_sim.unique("A1234/") + "/2011"
    wanted = canvas_sim.make_user(sis_user_id=sis_id)

    assert admin.find_user_by_sis_id(sis_id)["id"] == wanted["id"]


def test_it_finds_a_user_by_an_sis_id_with_a_percent_sign(canvas_sim, admin):
    sis_id = canvas_sim.unique("P%41")
    wanted = canvas_sim.make_user(sis_user_id=sis_id)

    assert admin.find_user_by_sis_id(sis_id)["id"] == wanted["id"]


def test_it_returns_none_for_an_sis_id_nobody_has(canvas_sim, admin):
    assert admin.find_user_by_sis_id(canvas_sim.unique("nobody")) is None


def test_it_finds_a_user_by_login_ignoring_case(admin, parent):
    assert admin.find_user_by_login(parent["login"].upper())["id"] == parent["id"]


def test_it_gets_a_user_by_id_by_self_and_by_sis_id(canvas_sim, admin, make_client):
    sis_id = canvas_sim.unique("SIS")
    user = canvas_sim.make_user(sis_user_id=sis_id)

    assert admin.get_user(user["id"])["id"] == user["id"]
    assert admin.get_user(str(user["id"]))["id"] == user["id"]
    assert admin.get_user(f"sis_user_id:{sis_id}")["id"] == user["id"]
    assert make_client(user["token"]).get_user("self")["id"] == user["id"]


def test_it_pages_through_more_than_100_search_results(canvas_sim, admin, canvas_log):
    word = canvas_sim.unique("pagetest")
    with ThreadPoolExecutor(max_workers=16) as pool:
        created = list(pool.map(lambda n: canvas_sim.make_user(name=f"Pat {word} {n:03d}"), range(130)))

    found = admin.search_users(word)

    assert len(found) == 130
    assert {user["id"] for user in found} == {user["id"] for user in created}
    pages = canvas_log.attempts(method="GET", contains="/accounts/self/users")
    assert len(pages) == 2
    assert "per_page=100" in pages[0].canvas_path
    assert "page=2" in pages[1].canvas_path  # the rel="next" link, not a URL we built


def test_it_picks_the_exact_user_when_a_numeric_search_matches_many(canvas_sim, admin):
    by_id = canvas_sim.make_user()
    term = str(by_id["id"])  # searching a number also matches the user with that id
    wanted = canvas_sim.make_user(sis_user_id=term)
    similar = canvas_sim.make_user(sis_user_id=f"{term}0{canvas_sim.unique('')}")

    fuzzy = {user["id"] for user in admin.search_users(term)}
    found = admin.find_user_by_identifier(term)

    assert {by_id["id"], wanted["id"], similar["id"]} <= fuzzy
    assert found["id"] == wanted["id"]


def test_it_picks_the_exact_user_by_email_among_substring_matches(canvas_sim, admin):
    key = canvas_sim.unique("ann")
    wanted = canvas_sim.make_user(login=f"{key}@example.test")
    canvas_sim.make_user(login=f"jo{key}@example.test")
    canvas_sim.make_user(login=f"{key}@example.test.org")

    assert admin.find_user_by_email(f"  {key.upper()}@Example.TEST ")["id"] == wanted["id"]


def test_it_finds_a_user_by_email_when_the_login_is_not_the_email(canvas_sim, admin):
    email = f"{canvas_sim.unique('mail')}@example.test"
    wanted = canvas_sim.make_user(login=canvas_sim.unique("login"), email=email)

    assert admin.find_user_by_email(email)["id"] == wanted["id"]


def test_it_returns_none_when_the_search_only_finds_similar_users(canvas_sim, admin):
    key = canvas_sim.unique("sim")
    canvas_sim.make_user(login=f"x{key}@example.test")

    assert admin.find_user_by_email(f"{key}@example.test") is None


def test_it_prefers_the_login_over_another_users_email(canvas_sim, admin):
    address = f"{canvas_sim.unique('both')}@example.test"
    owner = canvas_sim.make_user(login=address)
    canvas_sim.make_user(login=canvas_sim.unique("other"), email=address)

    assert admin.find_user_by_email(address)["id"] == owner["id"]


def test_it_refuses_to_guess_between_two_users_with_the_same_email(canvas_sim, admin):
    address = f"{canvas_sim.unique('shared')}@example.test"
    canvas_sim.make_user(login=canvas_sim.unique("one"), email=address)
    canvas_sim.make_user(login=canvas_sim.unique("two"), email=address)

    with pytest.raises(CanvasAmbiguousMatch):
        admin.find_user_by_email(address)


@pytest.mark.parametrize("term", ["", "a", " b "])
def test_it_refuses_search_terms_shorter_than_two_characters_without_calling(admin, canvas_log, term):
    with pytest.raises(ValueError):
        admin.search_users(term)

    assert canvas_log.attempts() == []


def test_it_creates_a_parent_who_is_emailed_to_finish_registration(canvas_sim, admin):
    email = f"{canvas_sim.unique('parent')}@example.test"

    created = admin.create_observer(name="Robin Parent", email=email, locale="es")

    assert created["name"] == "Robin Parent"
    assert admin.find_user_by_email(email)["id"] == created["id"]
    assert [message["kind"] for message in canvas_sim.messages(to=email)] == ["complete_registration"]


def test_it_creates_a_parent_linked_to_the_student_in_one_call(canvas_sim, admin, make_client, student):
    code = make_client(student["token"]).create_pairing_code("self")
    email = f"{canvas_sim.unique('parent')}@example.test"

    created = admin.create_observer(name="Sam Parent", email=email, pairing_code=code.code)

    assert admin.show_observee(created["id"], student["id"])["id"] == student["id"]
    assert [observer["id"] for observer in admin.list_observers(student["id"])] == [created["id"]]
