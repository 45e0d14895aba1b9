"""The baseline: what a district's classic observer script does, one family at a time.

Written the way such scripts are (plain ``requests``, an admin token, a CSV of families), so that the
portal's figures can be read as a ratio to it. For each family, in order:

1. search the student (``GET /accounts/self/users?search_term=<SIS id>``) and pick the exact match;
2. search the parent by email;
3. list the parent's observees, when Canvas has the parent already (to skip a family linked before);
4. make a pairing code for the student (as the admin);
5. create the parent's account (when Canvas has none);
6. pair: ``POST /users/:parent/observees`` with the code.

A throttled answer (403) is waited out and repeated, as careful scripts do.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import requests


@dataclass
class Tally:
    families: int = 0
    linked: int = 0
    failed: list[str] = field(default_factory=list)
    calls: int = 0
    throttled: int = 0
    seconds: float = 0.0


class ClassicScript:
    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.tally = Tally()

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        while True:
            self.tally.calls += 1
            response = self.session.request(method, self.base_url + path, timeout=30, **kwargs)
            if response.status_code == 403 and "Rate Limit Exceeded" in response.text:
                self.tally.throttled += 1
                time.sleep(1)
                continue
            return response

    def search(self, term: str, field_name: str) -> dict | None:
        response = self.call("GET", "/api/v1/accounts/self/users", params={"search_term": term, "per_page": 100})
        response.raise_for_status()
        matches = [user for user in response.json() if str(user.get(field_name) or "").lower() == term.lower()]
        return matches[0] if matches else None

    def link_family(self, student_sis_id: str, parent_email: str, parent_name: str) -> None:
        student = self.search(student_sis_id, "sis_user_id")
        if student is None:
            raise LookupError(f"no student {student_sis_id}")
        parent = self.search(parent_email, "login_id")
        if parent is not None:
            observees = self.call("GET", f"/api/v1/users/{parent['id']}/observees", params={"per_page": 100})
            if any(observee["id"] == student["id"] for observee in observees.json()):
                return
        code = self.call("POST", f"/api/v1/users/{student['id']}/observer_pairing_codes")
        code.raise_for_status()
        if parent is None:
            created = self.call(
                "POST",
                "/api/v1/accounts/self/users",
                data={
                    "user[name]": parent_name,
                    "pseudonym[unique_id]": parent_email,
                    "pseudonym[force_self_registration]": "true",
                    "communication_channel[type]": "email",
                    "communication_channel[address]": parent_email,
                },
            )
            created.raise_for_status()
            parent = created.json()
        paired = self.call(
            "POST", f"/api/v1/users/{parent['id']}/observees", data={"pairing_code": code.json()["code"]}
        )
        paired.raise_for_status()

    def run(self, families: list[tuple[str, str, str]]) -> Tally:
        started = time.monotonic()
        for student_sis_id, parent_email, parent_name in families:
            self.tally.families += 1
            try:
                self.link_family(student_sis_id, parent_email, parent_name)
                self.tally.linked += 1
            except (requests.RequestException, LookupError, KeyError, ValueError) as exc:
                self.tally.failed.append(f"{student_sis_id}: {exc}")
        self.tally.seconds = time.monotonic() - started
        return self.tally
