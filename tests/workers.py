"""The suite's real Celery worker and simulator settings (registered for every test by tests/conftest.py).

By default the worker runs in this process (a thread, with an in-memory broker) against the test
database; where PostgreSQL and Redis run (CI sets REQUIRE_SERVICES=1) it is a separate
``celery worker`` process on Redis, against the same PostgreSQL test database.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import override_settings

from portal.celery import app
from tests.conftest import database_is_postgresql, is_reachable, services_required

REDIS_TEST_URL = "redis://127.0.0.1:6379/15"
ROOT = Path(__file__).resolve().parents[2]


def wait_for(condition, *, timeout: float = 30.0, interval: float = 0.1, message: str = "condition"):
    """Poll until ``condition()`` is truthy; the worker is asynchronous by design."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}")


def forget_canvas_limiter() -> None:
    """Drop what the Redis limiter remembers of the test Canvas: slots held and the room last seen.

    Every test talks to the session's one simulator with one admin token, so they share a limiter
    bucket. A worker a test SIGKILLs leaves its slots behind until their lease (two minutes) runs out,
    and a test's wrong codes leave the room low: the next test would wait on a Canvas that was reset.
    """
    if not is_reachable("127.0.0.1", 6379):
        return
    import redis

    client = redis.Redis.from_url(REDIS_TEST_URL)
    try:
        keys = list(client.scan_iter(match="canvas:limiter:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def use_worker_process() -> bool:
    if not database_is_postgresql():
        return False
    if is_reachable("127.0.0.1", 6379):
        return True
    if services_required():
        pytest.fail("REQUIRE_SERVICES=1 but Redis is not reachable on 127.0.0.1:6379", pytrace=False)
    return False


@pytest.fixture(scope="session")
def canvas_settings(canvas_sim_process):
    """Point the portal at the session's simulator, with short timeouts so fault tests stay quick."""
    overrides = override_settings(
        CANVAS_BASE_URL=canvas_sim_process.base_url,
        CANVAS_ADMIN_TOKEN=canvas_sim_process.admin_token,
        CANVAS_TIMEOUT_CONNECT=2.0,
        CANVAS_TIMEOUT_READ=1.0,
    )
    overrides.enable()
    yield canvas_sim_process
    overrides.disable()


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker, canvas_settings, tmp_path_factory):
    """A running worker for the whole session: a thread here, or a process on Redis in CI."""
    if use_worker_process():
        yield from _worker_process(canvas_settings, tmp_path_factory.mktemp("worker"))
    else:
        yield from _worker_thread()


def _worker_thread():
    from celery.contrib.testing.worker import start_worker

    app.conf.update(broker_url="memory://", result_backend=None, task_default_queue="celery")
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10, loglevel="WARNING"):
        yield "thread"


def worker_process(queue: str, sim, log_path: Path, *, loglevel: str = "INFO", **extra_env: str) -> subprocess.Popen:
    """A ``celery worker`` process on Redis, on its own queue, against this run's PostgreSQL test database."""
    db = connection.settings_dict
    database_url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": REDIS_TEST_URL,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "CANVAS_BASE_URL": sim.base_url,
        "CANVAS_ADMIN_TOKEN": sim.admin_token,
        "CANVAS_TIMEOUT_CONNECT": "2",
        "CANVAS_TIMEOUT_READ": "1",
        "SECRET_KEY": settings.SECRET_KEY,
        "PORTAL_BASE_URL": settings.PORTAL_BASE_URL,
        **extra_env,
    }
    env.pop("PYTEST_VERSION", None)
    with open(log_path, "wb") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(  # noqa: S603 - our own worker, fixed arguments
            [
                *(sys.executable, "-m", "celery", "-A", "portal", "worker", "-Q", queue),
                *("--pool=threads", "--concurrency=4", f"--loglevel={loglevel}"),
                *("--without-gossip", "--without-mingle", "--without-heartbeat"),
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own process group, so that a test can kill the worker with everything it started.
            start_new_session=True,
        )


def _worker_process(sim, log_dir: Path):
    queue = f"test-{uuid.uuid4().hex[:8]}"
    app.conf.update(broker_url=REDIS_TEST_URL, task_default_queue=queue)
    process = worker_process(queue, sim, log_dir / "worker.log")
    try:
        wait_for(
            lambda: b"ready" in (log_dir / "worker.log").read_bytes() or process.poll() is not None,
            timeout=60,
            message="the celery worker to start",
        )
        if process.poll() is not None:
            raise RuntimeError(f"celery worker exited: {(log_dir / 'worker.log').read_text()[-2000:]}")
        yield "process"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


# -- people ---------------------------------------------------------------------------------------
@pytest.fixture
def family(transactional_db, canvas_settings, celery_worker):
    """Builders for students and parents, backed by real Canvas (simulator) users; the simulator's
    faults and throttle are reset after each test."""
    yield Family(canvas_settings)
    canvas_settings.reset()
    forget_canvas_limiter()


class Family:
    def __init__(self, sim):
        self.sim = sim

    def student(self, *, enrolled: bool = True, with_token: bool = True):
        from allauth.socialaccount.models import SocialAccount, SocialToken
        from django.contrib.auth import get_user_model

        from linking.services.people import student_upsert_from_canvas

        canvas_user = self.sim.make_user(student=enrolled)
        user = get_user_model().objects.create_user(username=f"canvas-{canvas_user['id']}")
        account = SocialAccount.objects.create(user=user, provider="canvas", uid=str(canvas_user["id"]))
        if with_token:
            SocialToken.objects.create(account=account, token=canvas_user["token"])
        student = student_upsert_from_canvas(canvas_user_id=canvas_user["id"], name=canvas_user["name"], user=user)
        student.canvas = canvas_user
        return student

    def parent(self, *, email: str | None = None, name: str = "Pat Parent", in_canvas: bool = False):
        """A portal parent; ``in_canvas`` also gives them a Canvas account with the same email first."""
        from allauth.account.models import EmailAddress
        from django.contrib.auth import get_user_model

        from linking.services.people import parent_register

        email = email or f"{self.sim.unique('parent')}@example.test"
        canvas_user = self.sim.make_user(name=name, login=email, email=email) if in_canvas else None
        user = get_user_model().objects.create_user(username=email, email=email, password="a long passphrase")
        EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
        parent = parent_register(user=user, name=name)
        parent.canvas = canvas_user
        return parent

    def code_for(self, student) -> str:
        """A real pairing code, made in Canvas as the student."""
        from linking.canvas import CanvasClient

        client = CanvasClient(base_url=self.sim.base_url, token=student.canvas["token"])
        return client.create_pairing_code(student.canvas_user_id).code

    def admin(self):
        from linking.canvas import CanvasClient

        return CanvasClient(base_url=self.sim.base_url, token=self.sim.admin_token)
