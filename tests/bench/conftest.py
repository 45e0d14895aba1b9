"""A stack of its own for each benchmark run by a test: its database, Redis db, port and folders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from canvas_sim.testing import free_port
from tests.conftest import is_reachable, missing

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bench_env(tmp_path):
    if not (is_reachable("127.0.0.1", 5432) and is_reachable("127.0.0.1", 6379)):
        missing("the benchmarks need PostgreSQL and Redis on loopback")
    database = f"bench_test_{os.getpid()}"
    yield {
        **os.environ,
        "BENCH_DATABASE": database,
        "BENCH_REDIS_URL": "redis://127.0.0.1:6379/11",
        "BENCH_WEB_PORT": str(free_port()),
        "BENCH_LOG_DIR": str(tmp_path / "logs"),
        "BENCH_RESULTS_DIR": str(tmp_path),
    }
    import psycopg

    with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


@pytest.fixture
def run_bench(bench_env, tmp_path):
    """Run ``python -m bench.<name> *args`` as documented, in that stack; return the figures it saved."""
    env = {key: value for key, value in bench_env.items() if not key.startswith(("PYTEST", "DJANGO_"))}

    def run(name: str, *args: str) -> dict:
        command = [sys.executable, "-m", f"bench.{name}", *args]
        finished = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
        assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
        return json.loads((tmp_path / f"{name}.json").read_text())

    return run
