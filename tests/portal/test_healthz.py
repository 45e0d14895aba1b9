"""``/healthz`` (portal/health.py): the database, the broker and Canvas, each checked for real.

Canvas is the session's simulator over loopback HTTP (its faults switched on where a test needs them),
the broker a real Redis or an address nobody listens on, the database this run's test database; only
the database outage is placed by a patch, at the one query the check makes.
"""

from __future__ import annotations

import logging
import time
from unittest import mock

import pytest
from django.core.cache import cache
from django.db import OperationalError, connections

from canvas_sim.testing import free_port
from portal.celery import app
from portal.health import CANVAS_CHECK_KEY

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def canvas_checked_afresh():
    # The Canvas check's outcome is kept a while in the cache (portal/health.py): each test asks anew.
    cache.delete(CANVAS_CHECK_KEY)
    yield
    cache.delete(CANVAS_CHECK_KEY)


@pytest.fixture
def broker(monkeypatch):
    """Point the broker the web queues tasks on (Celery's, as portal/health.py reads it) at ``url``."""

    def use(url: str) -> None:
        monkeypatch.setattr(app.conf, "broker_url", url)

    return use


@pytest.fixture
def everything_up(canvas_settings, canvas_sim, redis_url, broker):
    """The simulator as Canvas with its admin token, and a Redis that answers as the broker."""
    broker(redis_url)
    return canvas_sim


def nobody_listens() -> str:
    return f"127.0.0.1:{free_port()}"


def test_it_answers_ok_with_every_check_timed_when_all_three_answer(client, everything_up):
    everything_up.stats_reset()

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "broker", "canvas"}
    for check in body["checks"].values():
        assert check["ok"] is True
        assert isinstance(check["ms"], float) and check["ms"] >= 0
    assert "skipped" not in body["checks"]["broker"]
    asked = [row for row in everything_up.stats()["requests"] if row["caller"] == "admin"]
    assert [(row["method"], row["route"], row["status"]) for row in asked] == [("GET", "/api/v1/users/:user_id", 200)]


def test_it_is_never_cached_and_needs_no_session_or_cookie(client, everything_up):
    response = client.get("/healthz")

    assert response["Cache-Control"] == "no-store"
    assert not response.cookies


def test_it_answers_a_head_request_and_refuses_a_post(client, everything_up):
    assert client.head("/healthz").status_code == 200
    assert client.post("/healthz").status_code == 405


def test_it_skips_the_broker_check_for_the_in_memory_broker_of_the_tests(client, canvas_settings, broker):
    broker("memory://")

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["checks"]["broker"] == {"ok": True, "ms": mock.ANY, "skipped": True}


def test_it_is_degraded_but_still_200_when_canvas_cannot_be_reached(client, everything_up, settings):
    settings.CANVAS_BASE_URL = f"http://{nobody_listens()}"

    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["canvas"] == {"ok": False, "ms": mock.ANY, "error": "CanvasTransient"}
    assert body["checks"]["database"]["ok"] and body["checks"]["broker"]["ok"]


def test_it_is_degraded_when_canvas_answers_with_errors(client, everything_up):
    everything_up.configure(error_rate=1.0)

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["checks"]["canvas"]["error"] == "CanvasTransient"


def test_it_gives_up_on_a_canvas_that_holds_its_answer_instead_of_hanging_the_probe(client, everything_up):
    everything_up.configure(hang_rate=1.0, hang_seconds=30)

    started = time.monotonic()
    response = client.get("/healthz")

    assert time.monotonic() - started < 10
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"


def test_it_is_degraded_when_canvas_refuses_the_token_and_never_shows_it(client, everything_up, settings, caplog):
    settings.CANVAS_ADMIN_TOKEN = "revoked-admin-token-7f3a9c2e41"

    with caplog.at_level(logging.DEBUG):
        response = client.get("/healthz")

    body = response.content.decode()
    assert response.status_code == 200
    assert response.json()["checks"]["canvas"]["error"] == "CanvasInvalidToken"
    assert "revoked-admin-token-7f3a9c2e41" not in body
    assert "revoked-admin-token-7f3a9c2e41" not in caplog.text
    assert "the canvas check failed" in caplog.text


def test_it_never_shows_the_working_token_or_canvas_address_either(client, everything_up, caplog):
    with caplog.at_level(logging.DEBUG):
        body = client.get("/healthz").content.decode()

    assert everything_up.admin_token not in body
    assert everything_up.admin_token not in caplog.text
    assert everything_up.base_url not in body


def test_it_is_degraded_when_no_admin_token_is_configured(client, everything_up, settings):
    settings.CANVAS_ADMIN_TOKEN = ""

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["checks"]["canvas"]["error"] == "ImproperlyConfigured"


def test_it_answers_503_down_when_the_broker_cannot_be_reached(client, canvas_settings, broker):
    broker(f"redis://{nobody_listens()}/0")

    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["checks"]["broker"] == {"ok": False, "ms": mock.ANY, "error": "ConnectionError"}
    assert body["checks"]["database"]["ok"] and body["checks"]["canvas"]["ok"]
    assert response["Cache-Control"] == "no-store"


def test_it_answers_503_down_when_the_database_drops_the_query(client, everything_up):
    gone = OperationalError("server closed the connection unexpectedly")

    with mock.patch.object(connections["default"], "cursor", side_effect=gone):
        response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["checks"]["database"] == {"ok": False, "ms": mock.ANY, "error": "OperationalError"}
    # The other two are still reported, so the page says what else is up.
    assert body["checks"]["broker"]["ok"] and body["checks"]["canvas"]["ok"]


def test_a_database_outage_outranks_canvas_being_down_too(client, everything_up, settings):
    settings.CANVAS_BASE_URL = f"http://{nobody_listens()}"

    with mock.patch.object(connections["default"], "cursor", side_effect=OperationalError("no connection")):
        response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["status"] == "down"


def canvas_calls_by_the_admin_token(sim) -> int:
    return sum(row["count"] for row in sim.stats()["requests"] if row["caller"] == "admin")


def test_probes_within_half_a_minute_share_one_canvas_call(client, everything_up):
    everything_up.stats_reset()

    first, second = client.get("/healthz").json(), client.get("/healthz").json()

    assert canvas_calls_by_the_admin_token(everything_up) == 1
    assert first["checks"]["canvas"]["ok"] is True and "cached" not in first["checks"]["canvas"]
    assert second["checks"]["canvas"] == {**first["checks"]["canvas"], "cached": True}
    # The database and the broker are asked every time.
    assert "cached" not in second["checks"]["database"] and "cached" not in second["checks"]["broker"]

    cache.delete(CANVAS_CHECK_KEY)  # as when the half minute is over
    third = client.get("/healthz").json()
    assert "cached" not in third["checks"]["canvas"]
    assert canvas_calls_by_the_admin_token(everything_up) == 2
