"""The people bench/web.py puts in front of the portal: parents, students and staff, as locust users.

    locust -f bench/locustfile.py --host http://127.0.0.1:8000   # with BENCH_WEB_PERSONAS set by bench.web

Each locust user is one place in front of a screen; each task is one person's visit, after which the next
person sits down. Parents sign in (some through the sign-in form, most with a session from an earlier
visit), look at their children, enter a code and watch it link; students make a code and wait for it;
staff page through the review queue. The pages poll as the portal's own script does (portal.js: after
1.5 s, every 2 s for half a minute, then every 5 s, until ``X-Pending: 0``), and people pause between
actions for as long as reading and typing take.

The load generator is the TLS proxy in front of the portal, so every request says ``X-Forwarded-Proto:
https`` and the person's own ``X-Forwarded-For``, and each POST carries the Origin and Referer of the
https site with the CSRF token of the session's cookie. Requests are named by page, ids collapsed.
"""

from __future__ import annotations

import json
import os
import random
import re
import secrets
import string
import time
from http.cookiejar import Cookie
from itertools import cycle
from urllib.parse import urlencode, urlsplit

import gevent
from locust import FastHttpUser, constant, events, task

PERSONAS = json.loads(open(os.environ["BENCH_WEB_PERSONAS"]).read()) if "BENCH_WEB_PERSONAS" in os.environ else {}
# Shares of visits: parents who sign in through the form (the rest come back with a session), parents who
# enter a child's code, codes mistyped (kept far below the portal's guessing limits), two codes at once.
SIGN_IN_SHARE = float(os.environ.get("BENCH_WEB_SIGN_IN_SHARE", "0.25"))
ADD_CHILD_SHARE = {"new": 0.9, "failed": 0.6, "linked": 0.15, "held": 0.05, "rejected": 0.3}
WRONG_CODE_SHARE = float(os.environ.get("BENCH_WEB_WRONG_CODE_SHARE", "0.03"))
TWO_CODES_SHARE = 0.1
CODE_ALPHABET = string.ascii_letters + string.digits
PAGE_OF = re.compile(r"Page (\d+) of (\d+)")
REQUEST_LINK = re.compile(r'href="(/staff/requests/[0-9a-f-]{36}/)"')
GIVE_UP_POLLING_AFTER = 600  # portal.js stops after ten minutes

people = {name: cycle(PERSONAS.get(name) or [{}]) for name in ("parents", "students", "staff")}
codes = list(reversed(PERSONAS.get("codes", [])))
tally = {"codes_entered": 0, "wrong_codes_entered": 0, "codes_ran_out": 0, "polls_given_up": 0, "signed_in": 0}


def think(low: float, high: float) -> None:
    gevent.sleep(random.uniform(low, high))


class Person(FastHttpUser):
    """Someone at a browser behind the school's TLS proxy."""

    abstract = True
    # Think times are inside each visit; a new person sits down straight after the last one leaves.
    wait_time = constant(0)

    def on_start(self) -> None:
        # Not everyone arrives in the same second: spread the first visits over ten seconds.
        think(0, 10)

    # -- being a browser behind the proxy --------------------------------------------------------
    def arrive(self, persona: dict, *, signed_in: bool = True) -> None:
        self.client.cookiejar.clear()
        self.origin = "https://" + urlsplit(self.host).netloc
        self.headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": persona["address"]}
        # Secure cookies: a browser sends them over https, which the proxy speaks; set them as it would.
        self.cookie("csrftoken", "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32)))
        if signed_in:
            self.cookie("sessionid", persona["session"])

    def cookie(self, name: str, value: str) -> None:
        host = urlsplit(self.host).hostname
        self.client.cookiejar.set_cookie(
            Cookie(0, name, value, None, False, host, False, False, "/", True, False, None, False, None, None, {})
        )

    def keep_cookies(self) -> None:
        """The portal's cookies are Secure, which the client would not send back over plain http (the
        proxy's side of the connection): keep them as the browser holds them, minus that flag."""
        for kept in [cookie for cookie in self.client.cookiejar if cookie.secure]:
            self.cookie(kept.name, kept.value)

    def csrf_token(self) -> str:
        # Sign-in rotates it, so read it from the jar each time, as the page's form would carry it.
        return next(cookie.value for cookie in self.client.cookiejar if cookie.name == "csrftoken")

    def get(self, path: str, name: str, *, expect: int = 200, headers: dict | None = None):
        with self.client.get(
            path, name=name, headers={**self.headers, **(headers or {})}, allow_redirects=False, catch_response=True
        ) as response:
            self._check(response, expect)
        self.keep_cookies()
        return response

    def post(self, path: str, data: dict, name: str, *, referer: str, expect: int = 302):
        body = urlencode({**data, "csrfmiddlewaretoken": self.csrf_token()})
        headers = {
            **self.headers,
            "Origin": self.origin,
            "Referer": self.origin + referer,
            "Content-Type": "application/x-www-form-urlencoded",
        }
        with self.client.post(
            path, data=body, name=name, headers=headers, allow_redirects=False, catch_response=True
        ) as response:
            self._check(response, expect)
        self.keep_cookies()
        return response

    @staticmethod
    def _check(response, expect: int) -> None:
        if response.status_code == expect:
            response.success()
        else:
            where = response.headers.get("Location", "") if response.headers else ""
            response.failure(f"{response.status_code} (expected {expect}) {where}".strip())

    def poll(self, path: str, name: str) -> None:
        """Refresh a panel as portal.js does, until the portal says nothing is pending."""
        started = time.monotonic()
        gevent.sleep(1.5)
        while True:
            elapsed = time.monotonic() - started
            response = self.get(path, name, headers={"X-Requested-With": "fetch"})
            if response.status_code != 200:
                gevent.sleep(10)  # the script waits longer after an error, then tries again
            elif response.headers.get("X-Pending") == "0":
                return
            if elapsed > GIVE_UP_POLLING_AFTER:
                tally["polls_given_up"] += 1
                return
            gevent.sleep(2 if elapsed < 30 else 5)


class Parent(Person):
    weight = 14

    @task
    def visit(self) -> None:
        parent = next(people["parents"])
        signing_in = random.random() < SIGN_IN_SHARE
        self.arrive(parent, signed_in=not signing_in)
        if signing_in:
            self.sign_in(parent)
        home = self.get("/family/", "GET /family/")
        think(3, 8)
        if random.random() < ADD_CHILD_SHARE.get(parent["state"], 0.5) and self.add_child():
            think(3, 10)  # sees the child linked
            return
        if home.status_code == 200 and "data-poll-idle" not in home.text:
            # Something is still being done (a request held for the school): the page keeps itself fresh
            # while the parent reads it, for as long as they stay.
            self.stay_polling("/family/requests/", "GET /family/requests/", seconds=random.uniform(10, 40))

    def sign_in(self, parent: dict) -> None:
        self.get("/accounts/login/?next=/family/", "GET /accounts/login/")
        think(5, 12)  # typing an email and a password
        self.post(
            "/accounts/login/?next=/family/",
            {"login": parent["email"], "password": PERSONAS["password"]},
            "POST /accounts/login/",
            referer="/accounts/login/?next=/family/",
        )
        tally["signed_in"] += 1

    def add_child(self) -> bool:
        entered = self.codes_to_enter()
        if not entered:
            tally["codes_ran_out"] += 1
            return False
        self.get("/family/add/", "GET /family/add/")
        think(8, 20)  # reading the code off the child's screen or card, typing it
        response = self.post("/family/add/", {"codes": " ".join(entered)}, "POST /family/add/", referer="/family/add/")
        if response.status_code != 302:
            return False
        home = self.get("/family/", "GET /family/")
        if home.status_code == 200 and "data-poll-idle" not in home.text:
            self.poll("/family/requests/", "GET /family/requests/")
        return True

    @staticmethod
    def codes_to_enter() -> list[str]:
        wanted = 2 if random.random() < TWO_CODES_SHARE else 1
        entered = []
        for _ in range(wanted):
            if random.random() < WRONG_CODE_SHARE:
                entered.append("".join(random.choice(CODE_ALPHABET) for _ in range(6)))
                tally["wrong_codes_entered"] += 1
            elif codes:
                entered.append(codes.pop())
        tally["codes_entered"] += len(entered)
        return entered

    def stay_polling(self, path: str, name: str, *, seconds: float) -> None:
        leaving = time.monotonic() + seconds
        gevent.sleep(1.5)
        while time.monotonic() < leaving:
            response = self.get(path, name, headers={"X-Requested-With": "fetch"})
            if response.status_code != 200 or response.headers.get("X-Pending") == "0":
                return
            gevent.sleep(2)


class Student(Person):
    weight = 5

    @task
    def visit(self) -> None:
        self.arrive(next(people["students"]))
        self.get("/student/", "GET /student/")
        think(3, 10)
        made = self.post("/student/codes/new/", {}, "POST /student/codes/new/", referer="/student/")
        page = made.headers.get("Location", "") if made.status_code == 302 else ""
        if not page.startswith("/student/codes/"):
            return
        detail = self.get(page, "GET /student/codes/<id>/")
        if detail.status_code == 200 and "data-poll-url" in detail.text:
            self.poll(page + "status/", "GET /student/codes/<id>/status/")
        think(10, 30)  # reading the code out, or copying it
        if random.random() < 0.25:
            self.get(page + "card/", "GET /student/codes/<id>/card/")
            think(5, 15)
        if random.random() < 0.15:
            self.post(
                page + "email/",
                {"email": f"parent.of.{random.randrange(10**6)}@families.example.test"},
                "POST /student/codes/<id>/email/",
                referer=page,
            )
            think(2, 6)


class Staff(Person):
    weight = 1

    def on_start(self) -> None:
        super().on_start()
        self.arrive(next(people["staff"]))

    @task
    def work_the_queue(self) -> None:
        self.get("/staff/", "GET /staff/")
        think(3, 8)
        draw = random.random()
        if draw < 0.55:
            self.page_through("state=held", "GET /staff/requests/?state=held")
        elif draw < 0.8:
            self.page_through("", "GET /staff/requests/")
        elif draw < 0.92:
            term = random.choice(PERSONAS.get("search") or ["Pat"])
            self.page_through(urlencode({"q": term}), "GET /staff/requests/?q=…", pages=1)
        else:
            self.page_through("sort=student", "GET /staff/requests/?sort=student", pages=2)

    def page_through(self, query: str, name: str, *, pages: int | None = None) -> None:
        """The list, a request or two opened from it, then the next page, for a few pages."""
        pages = pages or random.randint(2, 5)
        for number in range(1, pages + 1):
            path = "/staff/requests/?" + "&".join(filter(None, [query, f"page={number}" if number > 1 else ""]))
            listed = self.get(path, name + ("&page=N" if query and number > 1 else "?page=N" if number > 1 else ""))
            if listed.status_code != 200:
                return
            think(5, 15)
            opened = REQUEST_LINK.findall(listed.text)
            for detail in random.sample(opened, min(len(opened), random.choice((0, 1, 1, 2)))):
                self.get(detail, "GET /staff/requests/<id>/")
                think(8, 25)
            found = PAGE_OF.search(listed.text)
            if not found or int(found.group(1)) >= int(found.group(2)):
                return


@events.quitting.add_listener
def _report_tally(environment, **kwargs) -> None:
    # What the people did, besides the requests: bench.web reads it back from this file.
    path = os.environ.get("BENCH_WEB_TALLY")
    if path:
        with open(path, "w") as out:
            json.dump({**tally, "codes_left": len(codes)}, out)
