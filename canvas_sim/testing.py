"""A pytest plugin that runs the Canvas simulator as a real process on loopback.

Loaded with ``-p canvas_sim.testing`` (see pyproject). Tests talk to it over HTTP exactly as the
portal talks to a school's Canvas; the simulator-only control API (``/__sim__/``) is used to set up
users and to switch faults on and off.
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests

ADMIN_TOKEN = "sim-admin-" + uuid.uuid4().hex


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Simulator:
    """Handle on a running simulator process."""

    base_url: str
    admin_token: str
    process: subprocess.Popen | None = None
    _counter: itertools.count = field(default_factory=lambda: itertools.count(1))

    # -- control API (outside /api/v1, never part of Canvas) --------------------------------------
    def control(self, method: str, path: str, **json) -> dict:
        response = requests.request(
            method,
            f"{self.base_url}/__sim__/{path}",
            json=json or None,
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=10,
        )
        response.raise_for_status()
        return response.json()

    def configure(self, **settings) -> dict:
        """Change runtime behaviour: latency_ms, error_rate, hang_rate, hang_seconds,
        self_registration, unauthorized_status (401 or 403), throttle_enabled, throttle_hwm,
        throttle_outflow, throttle_maximum, throttle_up_front."""
        return self.control("POST", "config", **settings)

    def reset(self) -> dict:
        """Back to the settings the process was started with; empties every throttle bucket."""
        return self.control("POST", "config/reset")

    def unique(self, prefix: str = "u") -> str:
        return f"{prefix}{os.getpid()}x{next(self._counter)}x{uuid.uuid4().hex[:6]}"

    def make_user(
        self,
        *,
        name: str | None = None,
        login: str | None = None,
        password: str = "password123",
        sis_user_id: str | None = None,
        email: str | None = None,
        student: bool = False,
        admin: bool = False,
        token: bool = True,
        accounts: list[int] | None = None,
    ) -> dict:
        """Create a user directly in the simulator's store.

        ``student=True`` also enrols them (active) in the simulator's default course, so that
        Canvas lets them make pairing codes. ``accounts`` adds logins on further root accounts
        (the demo has a second district, id 2). Returns ``{"id", "login", "password", "token", ...}``.
        """
        key = self.unique()
        return self.control(
            "POST",
            "users",
            name=name or f"Test User {key}",
            login=login or f"{key}@example.test",
            password=password,
            sis_user_id=sis_user_id,
            email=email,
            student=student,
            admin=admin,
            token=token,
            accounts=accounts or [],
        )

    def users(self, email: str | None = None) -> list[dict]:
        """Every user the simulator holds (or those with this login or email), each with ``logins`` and
        the students they observe (``observees``, active links only)."""
        return self.control("GET", "users" + (f"?{urlencode({'email': email})}" if email else ""))["users"]

    def make_token(self, user_id: int, *, expires_in: int | None = None, scopes: list[str] | None = None) -> str:
        return self.control("POST", "tokens", user_id=user_id, expires_in=expires_in, scopes=scopes)["access_token"]

    def messages(self, to: str | None = None) -> list[dict]:
        """Notifications Canvas would have emailed (e.g. "complete your registration")."""
        return self.control("GET", "messages" + (f"?to={to}" if to else ""))["messages"]

    def stats(self) -> dict:
        """API requests served since the last :meth:`stats_reset` (by caller, route and status), the
        throttle's 403s, and the most requests in flight at once (see ``canvas_sim.app.Stats``)."""
        return self.control("GET", "stats")

    def stats_reset(self) -> dict:
        return self.control("POST", "stats/reset")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def start_simulator(data_dir: Path, *extra_args: str, admin_token: str = ADMIN_TOKEN) -> Simulator:
    """Start ``python -m canvas_sim`` on a free loopback port and wait until it answers."""
    port = free_port()
    log = open(data_dir / f"canvas_sim-{port}.log", "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
        [
            sys.executable,
            "-m",
            "canvas_sim",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--admin-token",
            admin_token,
            "--data",
            str(data_dir / f"canvas_sim-{port}.sqlite3"),
            "--seed",
            "demo",
            "--quiet",
            *extra_args,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    sim = Simulator(base_url=f"http://127.0.0.1:{port}", admin_token=admin_token, process=process)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"canvas_sim exited with {process.returncode}: see {log.name}")
        try:
            requests.get(f"{sim.base_url}/__sim__/health", timeout=1).raise_for_status()
            return sim
        except requests.RequestException:
            time.sleep(0.1)
    sim.stop()
    raise RuntimeError("canvas_sim did not start within 30 s")


@pytest.fixture(scope="session")
def canvas_sim_process(tmp_path_factory):
    sim = start_simulator(tmp_path_factory.mktemp("canvas_sim"))
    yield sim
    sim.stop()


@pytest.fixture
def canvas_sim(canvas_sim_process):
    """The shared simulator (demo seed), with faults and throttle reset after each test."""
    yield canvas_sim_process
    canvas_sim_process.reset()
