"""docker-compose.yml (production) and docker-compose.demo.yml, read as Compose reads them, and the Dockerfile.

No Docker engine runs here or in CI, so the files are parsed and their structure checked: what runs,
what it waits for, what it keeps, where its settings come from. The health checks that are plain
commands are run for real (beat's here; the web's and the worker's against live processes in
tests/security/test_production_processes.py).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PORTAL_SERVICES = ("migrate", "web", "worker", "beat")


def compose(name: str = "docker-compose.yml") -> dict:
    return yaml.safe_load((ROOT / name).read_text())


def service(name: str, file: str = "docker-compose.yml") -> dict:
    return compose(file)["services"][name]


def command_of(definition: dict) -> str:
    command = definition.get("command", "")
    return command if isinstance(command, str) else " ".join(command)


def healthcheck_python(name: str) -> str:
    """The Python a service's health check runs (``CMD python -c CODE``)."""
    test = service(name)["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"], test
    return test[3]


def healthcheck_shell(name: str) -> str:
    """A ``CMD-SHELL`` health check as the container's shell gets it (Compose turns ``$$`` into ``$``)."""
    test = service(name)["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL", test
    return test[1].replace("$$", "$")


def environment_of(definition: dict) -> dict[str, str]:
    environment = definition.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {key: str(value) for key, value in environment.items()}


# -- production ---------------------------------------------------------------------------------------------
def test_it_runs_the_database_the_queue_a_migration_and_the_three_portal_processes():
    assert set(compose()["services"]) == {"postgres", "redis", "migrate", "web", "worker", "beat"}


def test_every_service_has_a_health_check_or_is_the_one_off_migration():
    services = compose()["services"]
    for name, definition in services.items():
        if name == "migrate":
            assert "healthcheck" not in definition
            assert definition["restart"] == "no"
            continue
        assert definition["healthcheck"]["test"], name
        assert definition["restart"] == "unless-stopped", name


def test_the_portal_processes_start_after_a_successful_migration_and_healthy_services():
    for name in ("web", "worker", "beat"):
        assert service(name)["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
            "migrate": {"condition": "service_completed_successfully"},
        }, name
    assert service("migrate")["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert re.search(r"manage\.py migrate --no-input", command_of(service("migrate")))


def test_the_web_is_gunicorn_the_worker_uses_sixteen_threads_and_beat_keeps_its_schedule():
    web = command_of(service("web"))
    assert web.startswith("gunicorn ") and web.endswith(" portal.wsgi:application")
    assert "python:portal.gunicorn_config" in web
    worker = command_of(service("worker"))
    assert worker.startswith("celery -A portal") and " worker --pool=threads --concurrency=16" in worker
    beat = command_of(service("beat"))
    assert re.fullmatch(r"celery -A portal (-q )?beat --schedule var/celerybeat-schedule .*", beat)


def test_the_health_checks_ask_each_service_the_right_question():
    assert service("postgres")["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert "redis-cli ping" in healthcheck_shell("redis")
    assert "'http://127.0.0.1:8000/healthz'" in healthcheck_python("web")
    assert "celery -A portal inspect ping" in healthcheck_shell("worker")
    assert "-d celery@$HOSTNAME" in healthcheck_shell("worker")


def test_postgres_and_redis_keep_their_data_on_volumes_and_redis_appends_every_write():
    volumes = set(compose()["volumes"])
    assert "postgres-data:/var/lib/postgresql/data" in service("postgres")["volumes"]
    assert "redis-data:/data" in service("redis")["volumes"]
    assert {"postgres-data", "redis-data"} <= volumes
    assert command_of(service("redis")) == "redis-server --appendonly yes"


def test_the_portal_reads_its_settings_from_the_env_file_and_debug_stays_off():
    for name in PORTAL_SERVICES:
        definition = service(name)
        assert definition["env_file"] == ".env", name
        assert "DEBUG" not in environment_of(definition), name
    example = (ROOT / ".env.example").read_text()
    assert re.search(r"^DEBUG=0$", example, re.M)


def test_nothing_secret_is_written_in_the_production_file():
    for name, definition in compose()["services"].items():
        for key, value in environment_of(definition).items():
            assert not re.search(r"SECRET|TOKEN|KEY", key), f"{name}: {key} belongs in .env"
            if "PASSWORD" in key:
                assert value.startswith("${"), f"{name}: {key} is written out"
            for password in re.findall(r"://[^:/@]+:([^@]+)@", value):
                assert password.startswith("${"), f"{name}: {key} carries a password"


def test_every_variable_it_interpolates_is_in_the_env_example():
    used = set(re.findall(r"\$\{(\w+)", (ROOT / "docker-compose.yml").read_text()))
    listed = set(re.findall(r"^(\w+)=", (ROOT / ".env.example").read_text(), re.M))
    assert used and used <= listed, used - listed


def test_the_web_is_published_on_loopback_only_for_the_tls_proxy():
    assert service("web")["ports"] == ["127.0.0.1:8000:8000"]
    assert all("ports" not in service(name) for name in ("postgres", "redis", "worker", "beat"))


# -- the image ----------------------------------------------------------------------------------------------
def test_the_image_installs_the_portal_without_its_dev_extras_collects_static_files_and_runs_as_a_user():
    dockerfile = (ROOT / "Dockerfile").read_text()
    install = re.search(r"pip install (.*?)\s*\\?\n", dockerfile)
    assert install and install.group(1).split()[-1] == "." and "-e" not in install.group(1).split()
    assert "[dev" not in dockerfile
    assert "manage.py collectstatic --no-input" in dockerfile
    users = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert users and users[-1] not in {"root", "0"}
    assert ".env" in (ROOT / ".dockerignore").read_text().split()


# -- the demo -----------------------------------------------------------------------------------------------
def test_the_demo_file_keeps_todays_stack_with_the_simulator_and_debug_on():
    demo = compose("docker-compose.demo.yml")
    assert {"postgres", "redis", "canvas-sim", "web", "worker", "beat"} <= set(demo["services"])
    web = demo["services"]["web"]
    assert environment_of(web)["DEBUG"] == "1"
    assert "runserver" in command_of(web) and "demo_setup" in command_of(web)
    assert environment_of(web)["CANVAS_BASE_URL"] == "http://canvas-sim:8001"


# -- beat's health check, run ------------------------------------------------------------------------------
def beat_is_healthy(directory: Path) -> bool:
    result = subprocess.run(  # noqa: S603 - the health check's own code
        [sys.executable, "-c", healthcheck_python("beat")], cwd=directory, capture_output=True, timeout=30, check=False
    )
    return result.returncode == 0


@pytest.mark.parametrize("suffix", ["", ".db", ".dat"])
def test_beat_is_healthy_while_it_keeps_writing_its_schedule_file(tmp_path, suffix):
    (tmp_path / "var").mkdir()
    schedule = tmp_path / "var" / f"celerybeat-schedule{suffix}"
    assert not beat_is_healthy(tmp_path)

    schedule.write_bytes(b"")
    assert beat_is_healthy(tmp_path)

    twenty_minutes_ago = time.time() - 20 * 60
    os.utime(schedule, (twenty_minutes_ago, twenty_minutes_ago))
    assert not beat_is_healthy(tmp_path)
