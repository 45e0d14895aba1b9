"""Tokens, pairing codes and passwords never reach a log line, an audit event or an email that is not for them.

The flows run for real, through the portal's pages (pytest-django's live server) with a worker behind
it, against a Canvas simulator of this test's own whose admin token and OAuth client secret are fresh
random strings: a student signs in with Canvas and makes a code, after the portal refreshed their
expired token; a parent signs up with a password and links with the code from its QR link; staff sign
in with a password and their app, approve, decline, revoke, make a code with the admin token, import a
file of families, export the log. Every log line is kept meanwhile: the portal's own handlers (root at
DEBUG) in this process, the worker's log file (a ``celery worker --loglevel DEBUG`` process where
PostgreSQL and Redis run, else the in-process worker thread), and the simulator's request log, which is
what Canvas's access log would hold. Then each secret is looked for in all of them, in every column
of every audit event, and in every email except the one that is meant to carry it.
"""

from __future__ import annotations

import csv
import email
import io
import json
import logging
import os
import re
import secrets
import signal
import subprocess
import sys
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import requests
from allauth.mfa.models import Authenticator
from allauth.mfa.utils import decrypt
from allauth.socialaccount.models import SocialToken
from django.conf import settings
from django.core import mail
from django.utils import timezone

from canvas_sim.testing import Simulator, free_port
from linking.audit.models import AuditEvent
from linking.models import ImportRun, LinkRequest, ObservationLink, PairingCode, Parent, Student
from linking.services.staff import link_policy_update
from portal.celery import app
from tests.journey.conftest import Browser, Portal
from tests.journey.test_family_journey import code_on, invites_a_parent, signs_in_with_canvas
from tests.staff.conftest import staff_member_make, totp_code
from tests.workers import use_worker_process, wait_for, worker_process

ROOT = Path(__file__).resolve().parents[2]
CLIENT_ID = "10000000000077"
VERIFICATION_CODE = re.compile(r"^\s*([A-Z0-9]{4,}(?:-[A-Z0-9]+)*)\s*$", re.MULTILINE)


# -- a simulator with secrets of its own, and its request log -------------------------------------
@dataclass
class SecretSimulator(Simulator):
    client_secret: str = ""
    log_path: Path | None = None


@pytest.fixture
def secret_sim(tmp_path):
    """The simulator, logging every request line (not --quiet), with a random admin token and client secret."""
    port = free_port()
    sim = SecretSimulator(
        base_url=f"http://127.0.0.1:{port}",
        admin_token="sim-admin-" + secrets.token_urlsafe(24),
        client_secret="oauth-secret-" + secrets.token_urlsafe(24),
        log_path=tmp_path / "canvas_sim.log",
    )
    with open(sim.log_path, "wb") as log:
        sim.process = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            [
                *(sys.executable, "-m", "canvas_sim", "--host", "127.0.0.1", "--port", str(port)),
                *("--admin-token", sim.admin_token, "--data", str(tmp_path / "canvas_sim.sqlite3")),
                *("--oauth-client-id", CLIENT_ID, "--oauth-client-secret", sim.client_secret),
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: _answers(sim), timeout=30, message="the simulator")
        yield sim
    finally:
        sim.stop()


def _answers(sim: Simulator) -> bool:
    try:
        return requests.get(f"{sim.base_url}/__sim__/health", timeout=1).ok
    except requests.RequestException:
        return False


# -- every log line -------------------------------------------------------------------------------
@contextmanager
def every_log_line():
    """What the portal's own log handlers write while the block runs, with the root logger at DEBUG.

    Each stream handler of every logger (the settings' console handler, Django's server log, any a
    library added) writes into one buffer instead, through its own level, filters and format, so the
    buffer holds exactly the lines a deployment would keep. pytest's capture handlers are left alone.
    """
    buffer = io.StringIO()
    loggers = [
        logging.getLogger(),
        *(item for item in logging.Logger.manager.loggerDict.values() if isinstance(item, logging.Logger)),
    ]
    swapped = []
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and not type(handler).__module__.startswith("_pytest"):
                swapped.append((handler, handler.setStream(buffer)))
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        root.setLevel(level)
        for handler, stream in swapped:
            handler.setStream(stream)


# -- the worker -----------------------------------------------------------------------------------
@dataclass
class Worker:
    kind: str  # "thread" (in this process: its logs are this process's, its emails in mail.outbox) or "process"
    log_path: Path | None = None
    mail_dir: Path | None = None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def emails(self) -> list[email.message.Message]:
        if not self.mail_dir:
            return []
        return [
            email.message_from_bytes(part.encode())
            for path in sorted(self.mail_dir.iterdir())
            for part in _messages_in(path)
        ]


def _messages_in(path: Path) -> list[str]:
    # Django's file backend writes each message followed by a line of 79 dashes.
    return [part.strip("\n") for part in path.read_text().split("-" * 79) if part.strip()]


@pytest.fixture
def worker(secret_sim, celery_worker, tmp_path):  # noqa: F811 - the fixture
    """A worker talking to ``secret_sim``: a DEBUG ``celery worker`` process with PostgreSQL and Redis, else the
    session's in-process thread (whose settings are this process's, overridden below)."""
    if not use_worker_process():
        yield Worker("thread")
        return
    queue = f"secrets-{uuid.uuid4().hex[:8]}"
    log_path, mail_dir = tmp_path / "worker.log", tmp_path / "worker-mail"
    mail_dir.mkdir()
    process = worker_process(
        queue,
        secret_sim,
        log_path,
        loglevel="DEBUG",
        LOG_LEVEL="DEBUG",
        CANVAS_OAUTH_CLIENT_ID=CLIENT_ID,
        CANVAS_OAUTH_CLIENT_SECRET=secret_sim.client_secret,
        EMAIL_URL=f"filemail:///{mail_dir}",  # django-environ drops the first slash of the path
    )
    previous_queue = app.conf.task_default_queue
    try:
        wait_for(
            lambda: b"ready" in log_path.read_bytes() or process.poll() is not None, timeout=60, message="the worker"
        )
        assert process.poll() is None, log_path.read_text()[-3000:]
        # Tasks the web queues go to this worker alone (the session's worker talks to another simulator).
        app.conf.task_default_queue = queue
        yield Worker("process", log_path=log_path, mail_dir=mail_dir)
    finally:
        app.conf.task_default_queue = previous_queue
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def portal(live_server, settings, secret_sim, worker):
    settings.SECRET_KEY = "portal-secret-key-" + secrets.token_urlsafe(40)
    settings.CANVAS_BASE_URL = secret_sim.base_url
    settings.CANVAS_ADMIN_TOKEN = secret_sim.admin_token
    settings.CANVAS_TIMEOUT_CONNECT, settings.CANVAS_TIMEOUT_READ = 2.0, 5.0
    settings.SOCIALACCOUNT_PROVIDERS = {
        "canvas": {"APPS": [{"client_id": CLIENT_ID, "secret": secret_sim.client_secret}], "OAUTH_PKCE_ENABLED": True}
    }
    # Outside DEBUG the cookies are Secure, and a browser would not send them back over http://.
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False
    running = Portal(url=live_server.url, sim=secret_sim, worker=worker.kind)
    yield running
    for browser in running.browsers:
        browser.session.close()


# -- the flows ------------------------------------------------------------------------------------
@dataclass
class Secrets:
    """Every secret the flows handled, by kind."""

    values: dict[str, set[str]] = field(default_factory=dict)

    def add(self, kind: str, *values: str | None) -> None:
        self.values.setdefault(kind, set()).update(value for value in values if value)

    def found_in(self, text: str) -> list[tuple[str, str]]:
        # Also decoded, once and twice: a code inside a link inside a link is %253D-encoded.
        texts = [text, unquote(text), unquote(unquote(text))]
        found = []
        for kind, values in self.values.items():
            for value in values:
                # Codes are short: only whole words count, never six letters inside a hash.
                pattern = re.compile(rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])")
                if any(pattern.search(each) for each in texts):
                    found.append((kind, value))
        return found


def sign_up(portal: Portal, name: str, password: str, found: Secrets) -> tuple[Browser, str]:
    browser, address = portal.browser(), f"{portal.sim.unique('parent')}@example.test"
    confirm = browser.press(browser.get("/accounts/signup/"), "Sign Up", name=name, email=address, password1=password)
    assert urlsplit(confirm.url).path == "/accounts/confirm-email/", confirm.url
    [message] = [m for m in mail.outbox if m.to == [address] and m.subject.startswith("Family Portal:")]
    code = VERIFICATION_CODE.search(message.body).group(1)
    found.add("an email confirmation code", code)
    landing = browser.press(confirm, "Confirm", code=code)
    assert landing.status_code == 200, landing.text[:2000]
    return browser, address


def staff_signs_in(portal: Portal, user, password: str) -> Browser:
    browser = portal.browser()
    second_step = browser.press(browser.get("/accounts/login/"), "Sign In", login=user.email, password=password)
    assert urlsplit(second_step.url).path == "/accounts/2fa/authenticate/", second_step.url
    home = browser.press(second_step, "Sign In", code=totp_code(user))
    assert home.status_code == 200 and browser.get("/staff/").status_code == 200
    return browser


def settled(condition, message: str):
    return wait_for(condition, timeout=60, message=message)


def run_the_flows(portal: Portal, found: Secrets) -> None:
    sim = portal.sim
    found.add("the Canvas admin token", sim.admin_token)
    found.add("the OAuth client secret", sim.client_secret)
    found.add("SECRET_KEY", settings.SECRET_KEY)

    # A student signs in with Canvas; their token has expired by the time they make a code.
    student_password = "student-pw-" + secrets.token_urlsafe(12)
    first = sim.make_user(name="Ana Student", student=True, password=student_password, sis_user_id="SL-1")
    found.add("a Canvas password", student_password)
    found.add("a student's Canvas token", first["token"])
    student = portal.browser()
    signs_in_with_canvas(portal, student, first)
    token = SocialToken.objects.get(account__uid=str(first["id"]))
    found.add("a student's access token", token.token)
    found.add("a student's refresh token", token.token_secret)
    SocialToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(minutes=5))
    code_page = invites_a_parent(student)
    code = code_on(code_page)
    found.add("a pairing code", code)
    token.refresh_from_db()
    assert token.expires_at > timezone.now(), "the worker should have refreshed the expired token"
    found.add("a student's access token", token.token)
    found.add("a student's refresh token", token.token_secret)

    # A parent signs up with a password and links with the code, through its QR link.
    parent_password = "parent-pw-" + secrets.token_urlsafe(12)
    found.add("a portal password", parent_password)
    parent, parent_email = sign_up(portal, "Maria Garcia", parent_password, found)
    student.press(code_page, "Send the code", email=parent_email)
    add_child = parent.get(f"/family/add/?code={code}")
    parent.press(add_child, "Link")
    maria = Parent.objects.get(user__email=parent_email)
    settled(lambda: ObservationLink.objects.filter(parent=maria, state="active").exists(), "the first link")

    # Staff: a password and the authenticator app; every request is now held for review.
    staff_password = "staff-pw-" + secrets.token_urlsafe(12)
    found.add("a portal password", staff_password)
    admin_user = staff_member_make("sam.admin@school.example", admin=True)
    admin_user.set_password(staff_password)
    admin_user.save(update_fields=["password"])
    found.add("a staff TOTP secret", decrypt(Authenticator.objects.get(user=admin_user, type="totp").data["secret"]))
    staff = staff_signs_in(portal, admin_user, staff_password)
    link_policy_update(by=admin_user, mode="hold_all")

    # A second parent enters two codes made in Canvas; staff approve one and decline the other.
    second, third = (sim.make_user(name=f"Kid {n}", student=True, sis_user_id=f"SL-{n}") for n in (2, 3))
    found.add("a student's Canvas token", second["token"], third["token"])
    codes = [_canvas_code(sim, kid) for kid in (second, third)]
    found.add("a pairing code", *codes)
    other_password = "parent-pw-" + secrets.token_urlsafe(12)
    found.add("a portal password", other_password)
    other, other_email = sign_up(portal, "Lee Wong", other_password, found)
    other.press(other.get("/family/add/"), "Link", codes=" ".join(codes))
    held = settled(lambda: _held(other_email), "two held requests")
    staff.press(staff.get(f"/staff/requests/{held[0].pk}/"), "Approve")
    staff.press(staff.get(f"/staff/requests/{held[1].pk}/reject/"), "Decline", reason="Not on the school's records")
    settled(lambda: LinkRequest.objects.get(pk=held[0].pk).state == "linked", "the approval")

    # Staff revoke Maria's link, make a code for a student with the admin token, check and export the log.
    link = ObservationLink.objects.get(parent=maria, state="active")
    staff.press(staff.get(f"/staff/links/{link.pk}/revoke/"), "Revoke the link", reason="Court order on file")
    kid = Student.objects.get(canvas_user_id=second["id"])
    staff.press(staff.get(f"/staff/letters/students/{kid.pk}/"), "Make a code")
    staff_code = settled(
        lambda: PairingCode.objects.filter(student=kid, state="active").exclude(code="").first(), "the staff's code"
    )
    found.add("a pairing code", staff_code.code)
    assert staff_code.code in staff.get(f"/staff/letters/students/{kid.pk}/").text  # the letter is its carrier
    settled(lambda: ObservationLink.objects.get(pk=link.pk).state == "removed", "the revoke")

    # A file of families, uploaded, checked, run; its report downloaded.
    families = io.StringIO()
    csv.writer(families).writerows(
        [
            ["student_sis_id", "parent_email", "parent_first_name", "parent_last_name"],
            ["SL-2", f"{sim.unique('imp')}@example.test", "Ivy", "Import"],
            ["SL-3", f"{sim.unique('imp')}@example.test", "Ned", "Import"],
        ]
    )
    upload_page = staff.get("/staff/imports/")
    token_field = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', upload_page.text).group(1)
    preview = staff.session.post(
        upload_page.url + "new/",
        data={"csrfmiddlewaretoken": token_field, "method": "api"},
        files={"file": ("families.csv", families.getvalue().encode(), "text/csv")},
        headers={"Referer": upload_page.url},
        timeout=10,
    )
    assert preview.status_code == 200, preview.text[:2000]
    run = ImportRun.objects.get()
    settled(lambda: ImportRun.objects.get(pk=run.pk).state == "preview", "the import's check")
    staff.press(staff.get(preview.url), "Start the import")
    settled(lambda: ImportRun.objects.get(pk=run.pk).state == "done", "the import")
    assert staff.get(f"/staff/imports/runs/{run.pk}/report.csv").status_code == 200
    staff.press(staff.get("/staff/audit/"), "Check the chain now")
    assert staff.get("/staff/audit/export.csv").status_code == 200


def _held(parent_email: str) -> list[LinkRequest] | None:
    held = list(LinkRequest.objects.filter(parent__user__email=parent_email, state="held").order_by("created_at"))
    return held if len(held) == 2 else None


def _canvas_code(sim: Simulator, kid: dict) -> str:
    from linking.canvas import CanvasClient

    return CanvasClient(base_url=sim.base_url, token=kid["token"]).create_pairing_code(kid["id"]).code


# -- the search -----------------------------------------------------------------------------------
def _line_with(text: str, value: str) -> str:
    return next((line.strip()[:300] for line in text.splitlines() if value in unquote(unquote(line))), "")


def email_text(message) -> str:
    """Subject, headers and every text part of a message, decoded."""
    if isinstance(message, email.message.Message):
        parts = [str(value) for value in message.values()]
        for part in message.walk():
            if part.get_content_maintype() == "text":
                parts.append(part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8"))
        return "\n".join(parts)
    return "\n".join(
        [message.subject, " ".join(message.to), message.body, *(content for content, _ in message.alternatives)]
    )


# The emails a secret may travel in: the code a student sends a parent, the code that confirms an address.
CARRIERS = {
    "a pairing code": "sent you a Canvas pairing code",
    "an email confirmation code": "Please Confirm Your Email Address",
}


def carries(message, kind: str) -> bool:
    subject = message["Subject"] if isinstance(message, email.message.Message) else message.subject
    return kind in CARRIERS and subject.endswith(CARRIERS[kind])


def test_no_secret_reaches_a_log_an_audit_event_or_an_email(portal, worker, secret_sim):
    found = Secrets()
    with every_log_line() as portal_log:
        run_the_flows(portal, found)
    found.add("a pairing code", *LinkRequest.objects.exclude(code="").values_list("code", flat=True))
    found.add("a pairing code", *PairingCode.objects.exclude(code="").values_list("code", flat=True))

    # The people's browsers are requests sessions in this process too: their urllib3 lines (to the live
    # server) are a browser's history, not the portal's log. The portal's own calls go to Canvas.
    browsers = f"urllib3.connectionpool {portal.url} "
    logs = {
        "the portal's log": "\n".join(line for line in portal_log.getvalue().splitlines() if browsers not in line),
        "the worker's log": worker.log_text(),
        "Canvas's request log (the simulator)": secret_sim.log_path.read_text(errors="replace"),
    }
    # The logs were really kept, at DEBUG: the Canvas client's line for each redeemed code is there.
    all_logs = "\n".join(logs.values())
    assert "canvas POST /api/v1/users/" in all_logs or "canvas POST /api/v1/accounts/" in all_logs, all_logs[-3000:]
    assert "POST /login/oauth2/token" in logs["Canvas's request log (the simulator)"]

    leaks = []
    for where, text in logs.items():
        leaks += [f"{kind} {value!r} in {where}: {_line_with(text, value)}" for kind, value in found.found_in(text)]
    for event in AuditEvent.objects.order_by("id").values():
        row = json.dumps(event, default=str)
        leaks += [
            f"{kind} {value!r} in audit event {event['id']} ({event['action']})" for kind, value in found.found_in(row)
        ]
    messages = [*mail.outbox, *worker.emails()]
    assert any(carries(m, "a pairing code") for m in messages), "the code's email was sent"
    for message in messages:
        leaks += [
            f"{kind} {value!r} in an email: {email_text(message)[:200]!r}"
            for kind, value in found.found_in(email_text(message))
            if not carries(message, kind)
        ]
    assert not leaks, "secrets leaked:\n" + "\n".join(leaks)


# -- the server's own request log -----------------------------------------------------------------
def test_a_code_in_the_add_child_link_never_reaches_the_servers_request_log(production_server):
    """The QR code's link carries the code in its query, and sign-in and sign-up carry it on in ``next``;
    the request log of a server run by Django (runserver, as in the demo and docker-compose.demo.yml) hides it."""
    code = "Qr7xYz"
    first = production_server.get(f"/family/add/?code={code}")
    sign_in = first.headers["Location"]
    assert code in sign_in, "the code rides along to the sign-in page"
    production_server.get(urlsplit(sign_in).path + "?" + urlsplit(sign_in).query)
    production_server.get(f"/accounts/signup/?next=/family/add/%3Fcode%3D{code}")
    production_server.get(f"/no-such-page/?pairing_code={code}&access_token={code}")
    production_server.get(f"/accounts/login/?next=/accounts/signup/%3Fnext%3D/family/add/%253Fcode%253D{code}")

    log = production_server.log_text()
    assert '"GET /family/add/?code=' in log, log[-2000:]  # the request line is there, without the code
    assert Secrets({"a pairing code": {code}}).found_in(log) == [], log[-2000:]


def test_a_workers_own_log_handlers_hide_secrets_too():
    """A worker logs through the handlers Celery sets up (not settings.LOGGING's); portal/celery.py filters them."""
    script = (
        "import django, logging; django.setup(); from portal.celery import app; "
        "app.log.setup(loglevel='INFO'); "
        "logging.getLogger('linking.tasks').warning('redeeming %s', 'pairing_code=AbC123 token=sEcReT99'); "
        "logging.getLogger('celery.app.trace').info('next=/family/add/%3Fcode%3DAbC123')"
    )
    env = {"PATH": os.environ.get("PATH", ""), "DJANGO_SETTINGS_MODULE": "portal.settings", "DEBUG": "1"}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )

    assert result.returncode == 0, result.stderr
    log = result.stdout + result.stderr
    assert "redeeming pairing_code=[redacted] token=[redacted]" in log, log
    assert "AbC123" not in log and "sEcReT99" not in log, log


# -- error pages ----------------------------------------------------------------------------------
@pytest.fixture
def error_secrets(settings, canvas_sign_in):
    """Secrets of this test's own; SECRET_KEY changes before anyone signs in (sessions are signed with it)."""
    settings.DEBUG = False
    settings.SECRET_KEY = "portal-secret-key-" + secrets.token_urlsafe(40)
    settings.CANVAS_ADMIN_TOKEN = "admin-token-" + secrets.token_urlsafe(24)
    settings.SOCIALACCOUNT_PROVIDERS["canvas"]["APPS"][0]["secret"] = "oauth-secret-" + secrets.token_urlsafe(24)
    settings.ROOT_URLCONF = "tests.security.broken_urls"
    found = Secrets()
    found.add("SECRET_KEY", settings.SECRET_KEY)
    found.add("the Canvas admin token", settings.CANVAS_ADMIN_TOKEN)
    found.add("the OAuth client secret", settings.SOCIALACCOUNT_PROVIDERS["canvas"]["APPS"][0]["secret"])
    found.add("a pairing code", "Zq9RtY")
    found.add("a portal password", "error-page-password-9c1")
    return found


def test_error_pages_show_no_secret_and_log_none(error_secrets, student, parent_a):
    from django.test import Client

    code, password = "Zq9RtY", "error-page-password-9c1"
    error_secrets.add("a pairing code", student.own["pairing_code"].code)
    student.client.raise_request_exception = False
    with every_log_line() as log:
        pages = {
            "404": student.client.get(
                f"/student/codes/{uuid.uuid4()}/?code={code}&token={error_secrets.values['SECRET_KEY']}"
            ),
            "404 (no such URL)": Client().get(f"/no-such-page/?code={code}"),
            "403": parent_a.client.get(f"/staff/?code={code}"),
            "400": Client().post("/accounts/login/", {"password": password, **{f"f{n}": "x" for n in range(1100)}}),
            "500": student.client.post(f"/page-with-a-bug/?code={code}", {"password": password, "code": code}),
        }
    assert {name: page.status_code for name, page in pages.items()} == {
        "404": 404,
        "404 (no such URL)": 404,
        "403": 403,
        "400": 400,
        "500": 500,
    }
    leaks = [
        f"{kind} in the {name} page"
        for name, page in pages.items()
        for kind, _ in error_secrets.found_in(page.content.decode())
    ]
    leaks += [
        f"{kind} in the log: {_line_with(log.getvalue(), value)}"
        for kind, value in error_secrets.found_in(log.getvalue())
    ]
    assert "RuntimeError: a bug in the page" in log.getvalue(), "the 500 was logged, with its traceback"
    assert not leaks, "\n".join(leaks)
