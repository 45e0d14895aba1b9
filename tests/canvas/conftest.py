"""Fixtures for the Canvas client tests: clients pointed at the simulator over loopback HTTP.

The clients back off in milliseconds instead of seconds so the fault tests stay fast; the policy
(what is retried, how often) is the production one.
"""

from __future__ import annotations

import logging

import pytest

from linking.canvas import CanvasClient
from linking.canvas.transport import forget_allowances

FAST = {"backoff_base": 0.02, "backoff_cap": 0.2, "max_pace_seconds": 0.2}


@pytest.fixture(autouse=True)
def _fresh_rate_limit_memory():
    # The simulator empties its buckets after each test; the client's memory of them must follow.
    forget_allowances()
    yield
    forget_allowances()


@pytest.fixture
def make_client(canvas_sim):
    """Build a client for the simulator acting with ``token`` (the admin's by default)."""

    def make(token: str | None = None, **options) -> CanvasClient:
        settings = {"timeout": (2.0, 5.0), **FAST, **options}
        return CanvasClient(base_url=canvas_sim.base_url, token=token or canvas_sim.admin_token, **settings)

    return make


@pytest.fixture
def admin(make_client) -> CanvasClient:
    """The portal's admin client."""
    return make_client()


@pytest.fixture
def student(canvas_sim) -> dict:
    """A student enrolled in a course, so Canvas lets them make pairing codes."""
    return canvas_sim.make_user(student=True)


@pytest.fixture
def parent(canvas_sim) -> dict:
    """A parent who already has a Canvas login."""
    return canvas_sim.make_user()


class CanvasLog:
    """The client's log lines, captured from DEBUG up."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog

    @property
    def records(self) -> list[logging.LogRecord]:
        return self.caplog.records

    def attempts(self, *, method: str | None = None, contains: str = "") -> list[logging.LogRecord]:
        """One record per HTTP attempt, optionally for one method and a path fragment."""
        return [
            record
            for record in self.caplog.records
            if hasattr(record, "canvas_attempt")
            and (method is None or record.canvas_method == method)
            and contains in record.canvas_path
        ]

    def throttled(self) -> list[logging.LogRecord]:
        return [record for record in self.attempts() if record.canvas_outcome == "throttled"]

    def clear(self) -> None:
        self.caplog.clear()


@pytest.fixture
def canvas_log(caplog) -> CanvasLog:
    caplog.set_level(logging.DEBUG, logger="linking.canvas")
    return CanvasLog(caplog)
