"""The whole portal on this machine, as production runs it, for the benchmarks.

    with Stack.start(latency_ms=150, workers=1) as stack:
        stack.sim          # the Canvas simulator, a process of its own (canvas_sim.testing.Simulator)
        stack.env          # the environment every portal process gets (DATABASE_URL, CANVAS_*, ...)
        stack.web_url      # gunicorn, when started with web=True

PostgreSQL gets a database of the benchmarks' own (``bench``, dropped and made again, then migrated);
Redis gets database 12 for the broker, the Canvas limiter and the cache (flushed). Workers are
``celery worker`` processes with the thread pool; the benchmark process itself is set up as a Django
process of the same environment (:meth:`Stack.django`), so it seeds and reads through the ORM.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
VAR = ROOT / "var" / "bench"
# Two stacks on one machine (a benchmark beside a test of the benchmarks) need their own of each.
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
DATABASE = os.environ.get("BENCH_DATABASE", "bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
WEB_PORT = int(os.environ.get("BENCH_WEB_PORT", "8000"))
LOG_DIR = Path(os.environ.get("BENCH_LOG_DIR", VAR / "logs"))
ADMIN_TOKEN = "bench-admin-token"  # the simulator's; never a real Canvas token
WORKER_THREADS = 16


def machine() -> dict:
    """What the figures were measured on."""
    memory = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = round(int(line.split()[1]) / 1024 / 1024, 1)
    cpu = platform.processor()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {"python": platform.python_version()}
    for name, command in (("postgresql", ["psql", "--version"]), ("redis", ["redis-server", "--version"])):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            versions[name] = subprocess.run(command, capture_output=True, text=True, timeout=5).stdout.strip()
    return {"cores": os.cpu_count(), "memory_gib": memory, "cpu": cpu, "system": platform.platform(), **versions}


def rss_mib(pid: int) -> float | None:
    """Resident memory of one process, MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def children_of(pid: int) -> list[int]:
    try:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(child) for child in found]


def write_result(name: str, result: dict) -> Path:
    """Save a benchmark's figures as var/bench/<name>.json (BENCH_RESULTS_DIR elsewhere), for bench.results."""
    folder = Path(os.environ.get("BENCH_RESULTS_DIR", VAR))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), "finished_at": time.time(), **result}, indent=2))
    return path


def _recreate_database() -> None:
    import psycopg

    with psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')


def _flush_redis() -> None:
    import redis

    connection = redis.Redis.from_url(REDIS_URL)
    connection.flushdb()
    connection.close()


@dataclass
class Stack:
    sim: object
    env: dict
    log_dir: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    web_url: str | None = None

    # -- starting ---------------------------------------------------------------------------------
    @classmethod
    @contextlib.contextmanager
    def start(
        cls,
        *,
        latency_ms: int = 150,
        workers: int = 1,
        worker_threads: int = WORKER_THREADS,
        web: bool = False,
        web_workers: int = 4,
        web_worker_class: str = "sync",
        web_threads: int = 1,
        sim_args: tuple[str, ...] = (),
        extra_env: dict | None = None,
    ):
        from canvas_sim.testing import start_simulator

        log_dir = LOG_DIR
        shutil.rmtree(log_dir, ignore_errors=True)
        log_dir.mkdir(parents=True)
        _recreate_database()
        _flush_redis()
        sim = start_simulator(log_dir, "--latency-ms", str(latency_ms), *sim_args, admin_token=ADMIN_TOKEN)
        env = {
            **{key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "PYTEST"))},
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DEBUG": "0",
            "SECRET_KEY": "bench-only-not-a-secret-" + "x" * 32,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": f"{POSTGRES_URL}/{DATABASE}",
            "CELERY_BROKER_URL": REDIS_URL,
            "CACHE_URL": REDIS_URL,
            "CELERY_TASK_DEFAULT_QUEUE": "bench",
            "CANVAS_BASE_URL": sim.base_url,
            "CANVAS_ADMIN_TOKEN": ADMIN_TOKEN,
            "PORTAL_BASE_URL": f"https://127.0.0.1:{WEB_PORT}",
            "EMAIL_URL": "dummymail://",
            "LOG_LEVEL": "INFO",
            # Production's static files (hashed names, from collectstatic's manifest), collected below.
            "STATIC_ROOT": str(log_dir / "static"),
            # Production settings (DEBUG off, HTTPS only): the load generators act as the TLS proxy in front,
            # sending X-Forwarded-Proto and X-Forwarded-For, so every family has an address of its own.
            "TRUSTED_PROXY_COUNT": "1",
            **(extra_env or {}),
        }
        stack = cls(sim=sim, env=env, log_dir=log_dir)
        try:
            stack.manage("migrate", "--no-input")
            stack.manage("collectstatic", "--no-input")
            for number in range(workers):
                stack.start_worker(f"worker{number}", threads=worker_threads)
            if web:
                stack.start_web(web_workers, worker_class=web_worker_class, threads=web_threads)
            yield stack
        finally:
            stack.stop()

    def manage(self, *args: str) -> None:
        subprocess.run(  # noqa: S603 - our own manage.py
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def _spawn(self, name: str, command: list[str]) -> subprocess.Popen:
        with open(self.log_dir / f"{name}.log", "wb") as log:
            process = subprocess.Popen(  # noqa: S603 - fixed commands of our own
                command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.processes[name] = process
        return process

    def start_worker(self, name: str, *, threads: int) -> subprocess.Popen:
        process = self._spawn(
            name,
            [
                *(sys.executable, "-m", "celery", "-A", "portal", "worker"),
                *("-Q", self.env["CELERY_TASK_DEFAULT_QUEUE"], "-n", f"{name}@%h"),
                *("--pool=threads", f"--concurrency={threads}", "--loglevel=INFO"),
                *("--without-gossip", "--without-mingle", "--without-heartbeat"),
                # Counts the worker's database queries (bench/querycount.py); nothing else changes.
                *("--include", "bench.querycount"),
            ],
        )
        self._wait(lambda: b"ready" in (self.log_dir / f"{name}.log").read_bytes(), process, f"{name} to start")
        return process

    def start_web(
        self, workers: int, port: int = WEB_PORT, *, worker_class: str = "sync", threads: int = 1
    ) -> subprocess.Popen:
        # gunicorn's defaults (sync, one thread) are left off the command line, as before.
        chosen = [] if (worker_class, threads) == ("sync", 1) else ["--worker-class", worker_class]
        if threads != 1:
            chosen += ["--threads", str(threads)]
        process = self._spawn(
            "web",
            [
                *(sys.executable, "-m", "gunicorn", "portal.wsgi:application", "--bind", f"127.0.0.1:{port}"),
                *("--workers", str(workers), "--access-logfile", "-", "--log-level", "warning", *chosen),
            ],
        )
        self.web_url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                response = requests.get(
                    self.web_url + "/", headers={"X-Forwarded-Proto": "https"}, allow_redirects=False, timeout=2
                )
                return response.status_code == 200
            except requests.RequestException:
                return False

        self._wait(up, process, "gunicorn to answer")
        return process

    @staticmethod
    def _wait(condition, process: subprocess.Popen, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{what}: the process exited with {process.returncode}")
            if condition():
                return
            time.sleep(0.2)
        raise RuntimeError(f"timed out waiting for {what}")

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
        self.processes.clear()
        self.sim.stop()
        # This process's own connections to the stack's database: the next stack drops that database
        # (WITH FORCE), which would cut them under a later query.
        if "django.apps" in sys.modules and sys.modules["django.apps"].apps.ready:
            from django.db import connections

            connections.close_all()

    # -- this process as a portal process ---------------------------------------------------------
    def django(self) -> None:
        """Set this process up as a Django process of the stack (seeding and reading through the ORM)."""
        os.environ.update(self.env)
        import django

        django.setup()

    def memory(self) -> dict[str, float | None]:
        """Resident memory of every process of the stack, MiB (gunicorn's and Celery's children included)."""
        found = {}
        for name, process in self.processes.items():
            found[name] = rss_mib(process.pid)
            for number, child in enumerate(children_of(process.pid)):
                found[f"{name}.{number}"] = rss_mib(child)
        if self.sim.process is not None:
            found["canvas_sim"] = rss_mib(self.sim.process.pid)
        return found
