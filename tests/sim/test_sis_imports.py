"""The simulator's SIS imports against the contract ("SIS imports, for large batches").

The simulator is shared by the whole session, so every test makes its own parents with unique SIS
ids and links them to demo students (S1001..S1029; S1003 already has an observer in the seed).
"""

from __future__ import annotations

import io
import time
import uuid
import zipfile

import pytest
import requests

TIMEOUT = 10
DONE = {"imported", "imported_with_messages", "failed", "failed_with_messages"}


class Sis:
    """Small client for the SIS import endpoints, as the admin."""

    def __init__(self, sim, token: str | None = None):
        self.sim = sim
        self.headers = {"Authorization": f"Bearer {token or sim.admin_token}"}
        self.imports_url = f"{sim.base_url}/api/v1/accounts/self/sis_imports"

    def post_csv(self, body: str | bytes, *, content_type: str = "text/csv") -> requests.Response:
        data = body.encode() if isinstance(body, str) else body
        return requests.post(
            self.imports_url,
            params={"import_type": "instructure_csv", "extension": "csv" if content_type == "text/csv" else "zip"},
            data=data,
            headers={**self.headers, "Content-Type": content_type},
            timeout=TIMEOUT,
        )

    def wait(self, response: requests.Response, limit: float = 10.0) -> dict:
        assert response.status_code == 200, response.text
        batch = response.json()
        deadline = time.monotonic() + limit
        while batch["workflow_state"] not in DONE:
            assert time.monotonic() < deadline, f"import still {batch['workflow_state']} after {limit} s"
            time.sleep(0.1)
            polled = requests.get(f"{self.imports_url}/{batch['id']}", headers=self.headers, timeout=TIMEOUT)
            assert polled.status_code == 200, polled.text
            batch = polled.json()
        return batch

    def run(self, body: str | bytes, **kwargs) -> dict:
        return self.wait(self.post_csv(body, **kwargs))

    def observees(self, parent_sis: str) -> list[dict]:
        response = requests.get(
            f"{self.sim.base_url}/api/v1/users/sis_user_id:{parent_sis}/observees",
            params={"per_page": 100},
            headers=self.headers,
            timeout=TIMEOUT,
        )
        assert response.status_code == 200, response.text
        return response.json()

    def user(self, sis_id: str) -> requests.Response:
        return requests.get(
            f"{self.sim.base_url}/api/v1/users/sis_user_id:{sis_id}", headers=self.headers, timeout=TIMEOUT
        )


def users_csv(*parents: tuple[str, str, str]) -> str:
    lines = ["user_id,login_id,first_name,last_name,email,status,declared_user_type"]
    for sis_id, first, last in parents:
        lines.append(
            f"{sis_id},{sis_id.lower()}@parents.example.test,{first},{last},{sis_id.lower()}@example.test,active,observer"
        )
    return "\n".join(lines) + "\n"


def observers_csv(*rows: tuple[str, str, str]) -> str:
    return "observer_id,student_id,status\n" + "".join(f"{o},{s},{st}\n" for o, s, st in rows)


def student_id_of(sis, sis_id: str) -> int:
    response = sis.user(sis_id)
    assert response.status_code == 200, response.text
    return response.json()["id"]


@pytest.fixture
def sis(canvas_sim) -> Sis:
    return Sis(canvas_sim)


@pytest.fixture
def tag() -> str:
    return uuid.uuid4().hex[:8].upper()


def test_users_csv_creates_parents_with_sis_ids(sis, tag):
    mum, dad = f"P{tag}A", f"P{tag}B"
    batch = sis.run(users_csv((mum, "Rosa", "Alvarez"), (dad, "Tomas", "Alvarez")))

    assert batch["workflow_state"] == "imported", batch
    assert batch["processing_errors"] == []
    for sis_id, name in ((mum, "Rosa Alvarez"), (dad, "Tomas Alvarez")):
        user = sis.user(sis_id)
        assert user.status_code == 200, user.text
        assert user.json()["name"] == name
        assert user.json()["sis_user_id"] == sis_id


def test_a_new_import_is_answered_before_it_is_processed(sis, tag):
    response = sis.post_csv(users_csv((f"P{tag}A", "Early", "Bird")))
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body["id"], int)
    assert body["workflow_state"] not in DONE
    assert sis.wait(response)["workflow_state"] == "imported"


def test_user_observers_csv_links_parents_to_students(sis, tag):
    mum, dad = f"P{tag}A", f"P{tag}B"
    assert sis.run(users_csv((mum, "Rosa", "Alvarez"), (dad, "Tomas", "Alvarez")))["workflow_state"] == "imported"

    batch = sis.run(observers_csv((mum, "S1011", "active"), (mum, "S1012", "active"), (dad, "S1012", "active")))

    assert batch["workflow_state"] == "imported", batch
    assert {s["id"] for s in sis.observees(mum)} == {student_id_of(sis, "S1011"), student_id_of(sis, "S1012")}
    assert [s["id"] for s in sis.observees(dad)] == [student_id_of(sis, "S1012")]
    assert sis.observees(mum)[0]["observation_link_root_account_ids"] == [1]


def test_a_zip_with_users_and_user_observers_imports_both_in_one_batch(sis, tag):
    parent = f"P{tag}Z"
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        # The observers file comes first in the zip: the import must still create the user first.
        zf.writestr("user_observers.csv", observers_csv((parent, "S1014", "active")))
        zf.writestr("users.csv", users_csv((parent, "Zip", "Parent")))

    batch = sis.run(archive.getvalue(), content_type="application/zip")

    assert batch["workflow_state"] == "imported", batch
    assert [s["id"] for s in sis.observees(parent)] == [student_id_of(sis, "S1014")]


def test_a_row_naming_an_unknown_student_is_imported_with_messages(sis, tag):
    parent, ghost = f"P{tag}A", f"NOSUCH{tag}"
    assert sis.run(users_csv((parent, "Una", "Known")))["workflow_state"] == "imported"

    batch = sis.run(observers_csv((parent, ghost, "active"), (parent, "S1016", "active")))

    assert batch["workflow_state"] == "imported_with_messages", batch
    assert len(batch["processing_errors"]) == 1
    file_name, message = batch["processing_errors"][0]
    assert file_name.endswith(".csv")
    assert ghost in message
    # The good row still went through.
    assert [s["id"] for s in sis.observees(parent)] == [student_id_of(sis, "S1016")]


def test_a_file_with_unknown_headers_fails_with_messages(sis):
    batch = sis.run("parent,child,state\nsomeone,S1001,active\n")

    assert batch["workflow_state"] == "failed_with_messages", batch
    assert len(batch["processing_errors"]) == 1
    assert len(batch["processing_errors"][0]) == 2


def test_status_deleted_in_user_observers_removes_the_link(sis, tag):
    parent = f"P{tag}D"
    assert sis.run(users_csv((parent, "Dee", "Leted")))["workflow_state"] == "imported"
    assert sis.run(observers_csv((parent, "S1018", "active"), (parent, "S1019", "active")))["workflow_state"] == (
        "imported"
    )
    assert len(sis.observees(parent)) == 2

    batch = sis.run(observers_csv((parent, "S1018", "deleted")))

    assert batch["workflow_state"] == "imported", batch
    assert [s["id"] for s in sis.observees(parent)] == [student_id_of(sis, "S1019")]
    # And an active row restores it.
    assert sis.run(observers_csv((parent, "S1018", "active")))["workflow_state"] == "imported"
    assert len(sis.observees(parent)) == 2


def test_a_users_row_with_a_new_name_renames_the_user_and_their_sortable_name(sis, tag):
    parent = f"P{tag}N"
    assert sis.run(users_csv((parent, "Rosa", "Alvarez")))["workflow_state"] == "imported"

    assert sis.run(users_csv((parent, "Rosa", "Diaz")))["workflow_state"] == "imported"

    user = sis.user(parent).json()
    assert (user["name"], user["sortable_name"], user["short_name"]) == ("Rosa Diaz", "Diaz, Rosa", "Rosa Diaz")


def test_a_users_row_without_name_columns_keeps_the_name(sis, tag):
    parent = f"P{tag}K"
    assert sis.run(users_csv((parent, "Keep", "Name")))["workflow_state"] == "imported"

    batch = sis.run(f"user_id,login_id,status\n{parent},{parent.lower()}@parents.example.test,active\n")

    assert batch["workflow_state"] == "imported", batch
    user = sis.user(parent).json()
    assert (user["name"], user["sortable_name"]) == ("Keep Name", "Name, Keep")


def test_a_non_admin_token_is_refused_401(canvas_sim, tag):
    user = canvas_sim.make_user()
    response = Sis(canvas_sim, user["token"]).post_csv(users_csv((f"P{tag}X", "Not", "Allowed")))

    assert response.status_code == 401, response.text
    assert response.json()["errors"][0]["message"] == "user not authorized to perform that action"
    assert Sis(canvas_sim).user(f"P{tag}X").status_code == 404


def test_a_non_admin_cannot_read_an_import(canvas_sim, sis, tag):
    batch = sis.run(users_csv((f"P{tag}R", "Read", "Only")))
    user = canvas_sim.make_user()
    response = requests.get(
        f"{sis.imports_url}/{batch['id']}", headers={"Authorization": f"Bearer {user['token']}"}, timeout=TIMEOUT
    )
    assert response.status_code == 401, response.text


def test_a_multipart_upload_works_too(sis, tag):
    parent = f"P{tag}M"
    response = requests.post(
        sis.imports_url,
        params={"import_type": "instructure_csv", "extension": "csv"},
        files={"attachment": ("users.csv", users_csv((parent, "Multi", "Part")).encode())},
        headers=sis.headers,
        timeout=TIMEOUT,
    )

    batch = sis.wait(response)

    assert batch["workflow_state"] == "imported", batch
    assert sis.user(parent).json()["name"] == "Multi Part"


def test_an_unknown_import_id_is_404(sis):
    response = requests.get(f"{sis.imports_url}/999999999", headers=sis.headers, timeout=TIMEOUT)
    assert response.status_code == 404, response.text
