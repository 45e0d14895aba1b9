"""Fault tests on real services: PostgreSQL, Redis, ``celery worker`` processes and the Canvas simulator.

Each test starts its own worker processes on a queue of its own, so that no other worker (the linking
tests' session worker, say) takes its tasks, and points this process's task messages at that queue.
Workers get ``TASK_RETRY_BACKOFF_CAP=2`` through their environment: a test rides out a fault in
seconds where production waits up to five minutes between retries; the retry policy is otherwise the
one that ships. Their database connections carry an application name, so a test can drop exactly them.

Without PostgreSQL and Redis these tests skip; ``REQUIRE_SERVICES=1`` (CI) turns that into a failure.
Every test ends with ``counting.tally``; the figures are printed again at the end of the run.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.db import connection

from linking.models import LinkRequest, Parent
from linking.services.links import link_requests_submit
from portal.celery import app
from tests.conftest import database_is_postgresql, is_reachable, missing
from tests.reliability.counting import TALLIES
from tests.workers import REDIS_TEST_URL, Family, forget_canvas_limiter, wait_for, worker_process

BACKOFF_CAP = "2"
WORKER_APPLICATION = "reliability-worker"


def pytest_terminal_summary(terminalreporter):
    if TALLIES:
        terminalreporter.write_sep("-", "reliability: what each fault cost")
        for result in TALLIES:
            terminalreporter.write_line(result.line())


@pytest.fixture
def services(transactional_db):
    """PostgreSQL and Redis, which worker processes need (the in-process worker thread is for SQLite)."""
    if not database_is_postgresql():
        missing("needs PostgreSQL for worker processes: DATABASE_URL=postgres://...")
    if not is_reachable("127.0.0.1", 6379):
        missing("needs Redis on 127.0.0.1:6379 for worker processes")


@pytest.fixture
def sim(canvas_settings):
    forget_canvas_limiter()
    yield canvas_settings
    canvas_settings.reset()
    forget_canvas_limiter()


@pytest.fixture
def families(services, sim):
    return Families(sim)


@pytest.fixture
def workers(services, sim, tmp_path):
    pool = Workers(sim, tmp_path)
    try:
        yield pool
    finally:
        pool.stop()


# -- workers --------------------------------------------------------------------------------------
def send_tasks_to(broker_url: str, queue: str) -> None:
    """Point this process's task messages at a broker and a queue.

    The app holds on to the pools of the broker it first used; it lets go of them here, as Celery does
    after a fork, so the next message goes to the broker now configured. (Not closed: kombu shares them
    between everyone using that broker URL.)
    """
    app.conf.update(broker_url=broker_url, task_default_queue=queue)
    app._pool = None
    app.amqp._producer_pool = None


def worker_database_url() -> str:
    db = connection.settings_dict
    host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
    return f"postgres://{db['USER']}@{host}:{port}/{db['NAME']}?application_name={WORKER_APPLICATION}"


@dataclass
class Worker:
    name: str
    process: subprocess.Popen
    log: Path

    def ready(self) -> bool:
        return b"ready" in self.log.read_bytes()

    def lines(self, pattern: str) -> list[str]:
        """The worker's log lines matching a regular expression (what the Canvas client logged, say)."""
        return [line for line in self.log.read_text(errors="replace").splitlines() if re.search(pattern, line)]

    def kill(self) -> None:
        """SIGKILL the worker with everything it started (its own process group): no shutdown, no acks."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


class Workers:
    def __init__(self, sim, log_dir: Path):
        self.sim = sim
        self.log_dir = log_dir
        self.queue = f"reliability-{uuid.uuid4().hex[:8]}"
        self.broker = REDIS_TEST_URL
        self.started: list[Worker] = []
        self._previous = (app.conf.broker_url, app.conf.task_default_queue)
        send_tasks_to(self.broker, self.queue)

    def use_broker(self, broker_url: str) -> None:
        """Workers started from now on, and this process's messages, use this broker."""
        self.broker = broker_url
        send_tasks_to(broker_url, self.queue)

    def start(self, name: str = "worker", **env: str) -> Worker:
        env = {
            "TASK_RETRY_BACKOFF_CAP": BACKOFF_CAP,
            "CELERY_BROKER_URL": self.broker,
            "DATABASE_URL": worker_database_url(),
            **env,
        }
        worker = Worker(
            name,
            worker_process(self.queue, self.sim, self.log_dir / f"{name}.log", **env),
            self.log_dir / f"{name}.log",
        )
        self.started.append(worker)
        wait_for(
            lambda: worker.ready() or worker.process.poll() is not None, timeout=60, message=f"worker {name} to start"
        )
        if worker.process.poll() is not None:
            raise RuntimeError(f"worker {name} exited: {worker.log.read_text()[-2000:]}")
        return worker

    def stop(self) -> None:
        for worker in self.started:
            worker.kill()
            # Captured, so shown only when the test failed: what the worker was doing.
            tail = worker.log.read_text(errors="replace").splitlines()[-40:]
            print(f"--- the last lines of worker {worker.name}'s log ---", *tail, sep="\n")
        send_tasks_to(*self._previous)


# -- families -------------------------------------------------------------------------------------
class Families:
    """Students with real pairing codes, and parents new to Canvas or already in it."""

    def __init__(self, sim):
        self.sim = sim
        self._family = Family(sim)

    def student(self):
        return self._family.student()

    def code_for(self, student) -> str:
        return self._family.code_for(student)

    def parent(self, *, in_canvas: bool = False, email: str | None = None, name: str = "Pat Parent") -> Parent:
        """A portal parent; ``in_canvas`` first gives them a Canvas account with the same email.

        No password: the real hasher costs a third of a second each, and no parent here signs in with one.
        """
        from allauth.account.models import EmailAddress
        from django.contrib.auth import get_user_model

        from linking.services.people import parent_register

        email = email or f"{self.sim.unique('parent')}@example.test"
        if in_canvas:
            self.sim.make_user(name=name, login=email, email=email, token=False)
        user = get_user_model().objects.create_user(username=email, email=email)
        EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
        return parent_register(user=user, name=name)


def submit(parent: Parent, *codes: str) -> list[LinkRequest]:
    """What the "add a child" form does once it is valid."""
    return link_requests_submit(parent=parent, codes=list(codes)).created


def wait_until_finished(requests: list[LinkRequest], *, timeout: float = 120.0) -> None:
    ids = [request.pk for request in requests]
    wait_for(
        lambda: not LinkRequest.objects.filter(pk__in=ids, state__in=LinkRequest.OPEN_STATES).exists(),
        timeout=timeout,
        interval=0.25,
        message=f"{len(ids)} link requests to finish",
    )


def terminate_backends(where: str, *params) -> int:
    """``pg_terminate_backend`` for this test database's backends matching ``where``, from a connection of
    its own (as an operator, a failover or a crash would); returns how many were terminated."""
    import psycopg

    db = connection.settings_dict
    with psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname=db["NAME"],
        autocommit=True,
    ) as admin:
        query = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
        query += f"AND pid <> pg_backend_pid() AND ({where})"  # the callers' own fixed conditions
        rows = admin.execute(query, params).fetchall()
    return sum(1 for (terminated,) in rows if terminated)
