"""Shared fixtures: access to the real PostgreSQL and Redis when they run on this machine.

On a laptop without them the tests that need them are skipped. CI sets REQUIRE_SERVICES=1, and then a
missing service fails the run instead, so a broken CI box cannot pass by skipping everything.
"""

import ipaddress
import os
import socket
from urllib.parse import urlsplit

import pytest
from django.conf import settings

# Transactional tests end with a flush that the audit log's append-only triggers refuse; this override of
# pytest-django's database fixture empties the log first (see tests/audit/fixtures.py).
from tests.audit.fixtures import _django_db_helper  # noqa: F401


def services_required() -> bool:
    return os.environ.get("REQUIRE_SERVICES") == "1"


def database_is_postgresql() -> bool:
    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def is_reachable(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts a TCP connection on host:port, without speaking its protocol."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def missing(reason: str):
    if services_required():
        pytest.fail(f"{reason} (REQUIRE_SERVICES=1, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


# -- loopback only ----------------------------------------------------------------------------------
# The suite may contact no address but loopback. Every outgoing connection in this process goes
# through socket.connect, so refusing there (before any packet leaves) covers requests, redis,
# psycopg and anything a later feature adds; refusals are also collected and fail the session.
REFUSED_ADDRESSES: list[str] = []
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def is_loopback(family: int, address) -> bool:
    if family not in (socket.AF_INET, socket.AF_INET6):
        return True  # Unix sockets and the like never leave the machine
    host = address[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a host name: resolving it is already a step off the machine


def _refuse_unless_loopback(sock: socket.socket, address) -> None:
    if not is_loopback(sock.family, address):
        REFUSED_ADDRESSES.append(repr(address))
        raise ConnectionRefusedError(f"tests may contact loopback only; refused {address!r}")


def _guarded_connect(self, address):
    _refuse_unless_loopback(self, address)
    return _real_connect(self, address)


def _guarded_connect_ex(self, address):
    _refuse_unless_loopback(self, address)
    return _real_connect_ex(self, address)


def pytest_sessionfinish(session, exitstatus):
    if REFUSED_ADDRESSES:
        session.config.get_terminal_writer().line(
            f"The suite tried to reach non-loopback addresses: {sorted(set(REFUSED_ADDRESSES))}", red=True
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_configure(config):
    socket.socket.connect = _guarded_connect
    socket.socket.connect_ex = _guarded_connect_ex
    # CI must exercise PostgreSQL; a forgotten DATABASE_URL would otherwise quietly test SQLite.
    if services_required() and not database_is_postgresql():
        raise pytest.UsageError(
            "REQUIRE_SERVICES=1 but DATABASE_URL is not PostgreSQL; "
            "set DATABASE_URL=postgres://postgres@127.0.0.1:5432/test."
        )


@pytest.fixture
def postgres(request):
    """The Django connection to a reachable PostgreSQL, with database access enabled for the test."""
    if not database_is_postgresql():
        missing("DATABASE_URL is not PostgreSQL")
    db = settings.DATABASES["default"]
    host, port = db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)
    if not is_reachable(host, port):
        missing(f"PostgreSQL is not reachable on {host}:{port}")
    request.getfixturevalue("db")
    from django.db import connection

    return connection


@pytest.fixture
def redis_url():
    """The broker URL, once Redis is known to accept connections there."""
    url = settings.CELERY_BROKER_URL
    parts = urlsplit(url)
    if parts.scheme not in {"redis", "rediss"}:
        missing(f"CELERY_BROKER_URL is not a Redis URL: {parts.scheme}://")
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    if not is_reachable(host, port):
        missing(f"Redis is not reachable on {host}:{port}")
    return url


# The simulator settings, the Celery worker and the ``family`` builders, defined once for the whole suite:
# a fixture imported into several modules would be several fixtures, each starting its own session worker
# and pointing the app's queue at it. Imported last, because tests.workers uses the helpers above.
from tests.workers import canvas_settings, celery_worker, family  # noqa: E402, F401
