"""The web (gunicorn), the worker and beat, each run as docker-compose.yml runs it, with LOG_FORMAT=json.

Each process gets the production environment, this run's test database and a real Redis. The test reads
everything it wrote from start to shutdown: every line is one JSON object (time, level, logger, message)
and no secret is in any of them. The web's and the worker's Compose health checks are run against them
too, while they run and after they stopped.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
from celery import Celery

from canvas_sim.testing import free_port
from tests.portal.test_compose import healthcheck_python, healthcheck_shell
from tests.security.production import HOST, ROOT, database_url, production_env
from tests.workers import REDIS_TEST_URL, wait_for

WRONG_TOKEN = "wrong-admin-token-5be1d0c37a"
# A Redis database no other test's worker uses: the worker's health check asks every worker on its
# broker for one name, and there must be no other to answer for it.
WORKER_BROKER = "redis://127.0.0.1:6379/13"


# What Celery's worker prints itself on SIGTERM (docker stop), outside logging: a collector reads it as text.
CELERY_SHUTDOWN_NOTICE = "worker: Warm shutdown (MainProcess)"


def json_lines(log: Path, *, besides: tuple[str, ...] = ()) -> list[dict]:
    """Every line of ``log`` (but the ones in ``besides``) as a JSON object; fails naming the first that is not."""
    entries = []
    for number, line in enumerate(log.read_text().splitlines(), start=1):
        if not line.strip() or line in besides:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            pytest.fail(f"line {number} of the log is not JSON: {line!r}")
        assert isinstance(entry, dict), line
        assert {"time", "level", "logger", "message"} <= set(entry), line
        entries.append(entry)
    return entries


def environment(**env: str) -> dict[str, str]:
    if os.geteuid() == 0:
        # The image runs every process as a user (Dockerfile); a test run as root would otherwise get Celery's
        # warning about root on stderr, printed before its logging is set up.
        env.setdefault("PYTHONWARNINGS", "ignore:You're running the worker with superuser privileges")
    return production_env(LOG_FORMAT="json", DATABASE_URL=database_url(), **env)


def spawn(command: list[str], log: Path, **env: str) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(  # noqa: S603 - our own processes, fixed arguments
            command, cwd=ROOT, env=environment(**env), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def healthy(command: list[str], **env: str) -> bool:
    """Whether a Compose health check passes, run with the container's environment (its ``celery`` on PATH)."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    result = subprocess.run(  # noqa: S603 - the health check's own command
        command, cwd=ROOT, env=environment(PATH=path, **env), capture_output=True, timeout=60, check=False
    )
    return result.returncode == 0


@pytest.fixture
def queue() -> str:
    """A queue of this test's own, so that its worker takes no other test's tasks."""
    return f"processes-{uuid.uuid4().hex[:8]}"


def test_the_web_writes_json_lines_without_the_token_and_passes_its_health_check(
    db, redis_url, canvas_settings, static_root, tmp_path
):
    log, port = tmp_path / "web.log", free_port()
    env = {
        "WEB_CONCURRENCY": "1",
        "STATIC_ROOT": str(static_root),
        "CELERY_BROKER_URL": REDIS_TEST_URL,
        "CANVAS_BASE_URL": canvas_settings.base_url,
        "CANVAS_ADMIN_TOKEN": WRONG_TOKEN,
    }
    # The health check's own code, at this server's port instead of the container's 8000.
    check = [sys.executable, "-c", healthcheck_python("web").replace("127.0.0.1:8000", f"127.0.0.1:{port}")]
    web = spawn(
        [sys.executable, "-m", "gunicorn", "--config", "python:portal.gunicorn_config"]
        + ["--bind", f"127.0.0.1:{port}", "portal.wsgi:application"],
        log,
        **env,
    )
    try:
        url, headers = f"http://127.0.0.1:{port}", {"Host": HOST, "X-Forwarded-Proto": "https"}

        def health() -> list[requests.Response]:
            try:
                return [requests.get(url + "/healthz", headers=headers, timeout=10)]
            except requests.ConnectionError:
                assert web.poll() is None, log.read_text()[-3000:]
                return []

        (answer,) = wait_for(health, timeout=60, message="gunicorn to answer")
        missing = requests.get(url + "/no-such-page/", headers=headers, timeout=10)
        healthy_while_up = healthy(check, **env)
    finally:
        stop(web)

    assert answer.json()["status"] == "degraded"  # Canvas refuses the wrong token: still healthy
    assert healthy_while_up
    assert not healthy(check, **env)
    assert missing.status_code == 404
    entries = json_lines(log)
    loggers = {entry["logger"] for entry in entries}
    assert {"gunicorn.error", "portal.health", "django.request"} <= loggers
    assert "gunicorn.access" not in loggers
    assert sum("Booting worker" in entry["message"] for entry in entries) == 1  # WEB_CONCURRENCY=1
    warning = next(entry for entry in entries if entry["logger"] == "portal.health")
    assert warning["level"] == "WARNING" and "CanvasInvalidToken" in warning["message"]
    assert WRONG_TOKEN not in log.read_text()


def test_the_worker_writes_json_lines_through_a_task_and_answers_its_health_check(db, redis_url, queue, tmp_path):
    log = tmp_path / "worker.log"
    env = {"CELERY_BROKER_URL": WORKER_BROKER, "CELERY_TASK_DEFAULT_QUEUE": queue, "HOSTNAME": socket.gethostname()}
    check = ["sh", "-c", healthcheck_shell("worker")]
    worker = spawn(
        [sys.executable, "-m", "celery", "-A", "portal", "-q", "worker", "--pool=threads", "--concurrency=2"]
        + ["--loglevel=INFO"],
        log,
        **env,
    )
    sender = Celery("tests-sender", broker=WORKER_BROKER, set_as_current=False)
    try:
        wait_for(lambda: b"ready." in log.read_bytes() or worker.poll() is not None, timeout=60, message="the worker")
        assert worker.poll() is None, log.read_text()[-3000:]
        sender.send_task("linking.tasks.outbox_requeue", queue=queue)
        wait_for(lambda: b"succeeded" in log.read_bytes(), timeout=30, message="the task to finish")
        healthy_while_up = healthy(check, **env)
    finally:
        sender.close()
        stop(worker)

    assert healthy_while_up
    assert not healthy(check, **env)
    messages = [entry["message"] for entry in json_lines(log, besides=(CELERY_SHUTDOWN_NOTICE,))]
    assert any(message.endswith("ready.") for message in messages)
    assert any("linking.tasks.outbox_requeue" in message and "succeeded" in message for message in messages)


def test_beat_writes_json_lines_and_the_schedule_file_its_health_check_reads(redis_url, queue, tmp_path):
    log, schedule = tmp_path / "beat.log", tmp_path / "celerybeat-schedule"
    beat = spawn(
        [sys.executable, "-m", "celery", "-A", "portal", "-q", "beat", "--schedule", str(schedule)]
        + ["--loglevel=INFO"],
        log,
        CELERY_BROKER_URL=REDIS_TEST_URL,
        CELERY_TASK_DEFAULT_QUEUE=queue,
    )
    try:
        wait_for(lambda: b"Starting" in log.read_bytes() or beat.poll() is not None, timeout=60, message="beat")
        assert beat.poll() is None, log.read_text()[-3000:]
        files = wait_for(lambda: list(tmp_path.glob("celerybeat-schedule*")), timeout=30, message="the schedule")
    finally:
        stop(beat)

    assert any(entry["logger"].startswith("celery.beat") for entry in json_lines(log))
    assert all(time.time() - path.stat().st_mtime < 120 for path in files)
