"""The portal as deployed: a production environment, and ``runserver`` started in it on this run's test database."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
from django.db import connection

from canvas_sim.testing import free_port

ROOT = Path(__file__).resolve().parents[2]
HOST = "portal.example.org"
CANVAS = "https://school.instructure.com"


def production_env(**overrides: str) -> dict[str, str]:
    """DEBUG off, a long random SECRET_KEY, the host names, Canvas; nothing inherited from the test run."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": f"{HOST},127.0.0.1",
        "PORTAL_BASE_URL": f"https://{HOST}",
        "CANVAS_BASE_URL": CANVAS,
        "CANVAS_ADMIN_TOKEN": secrets.token_urlsafe(32),
        "CANVAS_OAUTH_CLIENT_ID": "10000000000042",
        "CANVAS_OAUTH_CLIENT_SECRET": secrets.token_urlsafe(32),
        "CACHE_URL": "redis://127.0.0.1:6379/14",
        **overrides,
    }


def database_url() -> str:
    """This run's test database, for another process."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@dataclass
class Server:
    url: str
    log: Path

    def get(self, path: str, **headers: str) -> requests.Response:
        """A request as the TLS proxy hands it on: HTTPS said by X-Forwarded-Proto, for the public host name."""
        headers = {"X-Forwarded-Proto": "https", "Host": HOST, **headers}
        return requests.get(self.url + path, headers=headers, timeout=10, allow_redirects=False)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def collect_static(static_root: Path) -> Path:
    """``collectstatic`` into ``static_root`` in the production environment, as the Docker image is built."""
    subprocess.run(  # noqa: S603 - our own manage.py, fixed arguments
        [sys.executable, "manage.py", "collectstatic", "--no-input"],
        env=production_env(STATIC_ROOT=str(static_root)),
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return static_root


@contextmanager
def production_server(log: Path, **env: str) -> Iterator[Server]:
    """``runserver`` in the production environment. Static files come from WhiteNoise, as in production,
    so ``env`` names a STATIC_ROOT that ``collect_static`` filled (runserver serves none with DEBUG off)."""
    port = free_port()
    with open(log, "wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own manage.py, fixed arguments
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            env=production_env(DATABASE_URL=database_url(), **env),
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(url=f"http://127.0.0.1:{port}", log=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(server.url, timeout=1, allow_redirects=False)
                break
            except requests.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"runserver did not start: {log.read_text()[-3000:]}") from None
                time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=20)
