"""``/healthz``: whether this portal can do its work, for a load balancer, Docker's health check and a person.

A GET (or HEAD) answers JSON, each check with its outcome and how long it took::

    {"status": "ok",
     "checks": {"database": {"ok": true, "ms": 0.9},
                "broker": {"ok": true, "ms": 0.6},
                "canvas": {"ok": true, "ms": 38.2}}}

- ``database``: ``SELECT 1`` on the default connection.
- ``broker``: a Redis ``PING`` on the broker this process queues tasks on, with a one-second timeout.
  The memory broker of the tests and the filesystem broker of the demo have no server to ask:
  ``{"ok": true, "skipped": true}``.
- ``canvas``: ``GET /api/v1/users/self`` with the admin token through the Canvas client, with short
  timeouts, no retries and a short wait for a request slot (the probe takes its slot like every call).
  Its outcome is kept in the cache (shared by every web process) for ``CANVAS_CHECK_SECONDS`` and marked
  ``"cached": true`` meanwhile: load balancers and Docker probe every few seconds, and each probe must not
  spend a call of the token's throttle budget, which the families' links need.

``status`` is ``down``, with 503, when the database or the broker fails: no page can be served, or no work
queued. It is ``degraded``, still with 200, when only Canvas fails: families keep submitting codes, the
rows wait and the worker retries, so a load balancer must not take the web out of service for a Canvas
outage. Otherwise ``ok``. A failed check names the kind of error (an exception's class, such as
``CanvasInvalidToken``), never a host, a URL or a token; the detail goes to the log.

The view reads no session, user or CSRF token: a probe needs no cookie and gets none. Django still
answers 400 to a ``Host`` that is not in ALLOWED_HOSTS before any view runs, so the probe must send one
that is; SECURE_REDIRECT_EXEMPT spares it the redirect to HTTPS, so a probe that speaks plain HTTP
inside the network gets this answer rather than a 301.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_safe

from linking.canvas import admin_client
from linking.canvas.limiter import get_limiter
from portal.celery import app
from portal.database import close_broken_connections

logger = logging.getLogger(__name__)

# A probe that waits longer than the prober does is worse than a failed one: Docker and load balancers
# give up after a few seconds and count a timeout as down.
BROKER_TIMEOUT = 1.0
CANVAS_TIMEOUT = (2.0, 3.0)  # (connect, read) seconds, or the configured ones when shorter
CANVAS_SLOT_WAIT = 2.0
CANVAS_CHECK_SECONDS = 30
CANVAS_CHECK_KEY = "healthz:canvas"
# Brokers that live in this process or in local folders: there is no server to ping.
SERVERLESS_BROKERS = {"memory", "filesystem"}


@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    checks = {
        "database": _timed("database", _database),
        "broker": _timed("broker", _broker),
        "canvas": _canvas_recently(),
    }
    if not (checks["database"]["ok"] and checks["broker"]["ok"]):
        status, code = "down", 503
    elif not checks["canvas"]["ok"]:
        status, code = "degraded", 200
    else:
        status, code = "ok", 200
    response = JsonResponse({"status": status, "checks": checks}, status=code)
    response["Cache-Control"] = "no-store"
    return response


def _timed(name: str, check: Callable[[], dict | None]) -> dict:
    started = time.perf_counter()
    try:
        extra = check() or {}
    except Exception as exc:  # noqa: BLE001 - a probe reports every failure; a 500 would say nothing
        logger.warning("healthz: the %s check failed: %s: %s", name, type(exc).__name__, exc)
        return {"ok": False, "ms": _since(started), "error": type(exc).__name__}
    return {"ok": True, "ms": _since(started), **extra}


def _canvas_recently() -> dict:
    """The Canvas check's outcome from the last ``CANVAS_CHECK_SECONDS``, else a fresh one (then kept)."""
    try:
        kept = cache.get(CANVAS_CHECK_KEY)
    except Exception:  # noqa: BLE001 - the cache is Redis in production; the broker check reports Redis down
        kept = None
    if kept is not None:
        return {**kept, "cached": True}
    checked = _timed("canvas", _canvas)
    try:
        cache.set(CANVAS_CHECK_KEY, checked, CANVAS_CHECK_SECONDS)
    except Exception as exc:  # noqa: BLE001 - as above: the probe answers without its memory
        logger.warning("healthz: could not keep the Canvas check in the cache: %s", type(exc).__name__)
    return checked


def _since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def _database() -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        # Django replaces a dropped connection only between requests; the next probe must not inherit it.
        close_broken_connections()
        raise


def _broker() -> dict | None:
    url = app.conf.broker_url
    if urlsplit(url).scheme in SERVERLESS_BROKERS:
        return {"skipped": True}
    client = redis.Redis.from_url(url, socket_connect_timeout=BROKER_TIMEOUT, socket_timeout=BROKER_TIMEOUT)
    try:
        client.ping()
    finally:
        client.close()
    return None


def _canvas() -> None:
    timeout = (
        min(CANVAS_TIMEOUT[0], settings.CANVAS_TIMEOUT_CONNECT),
        min(CANVAS_TIMEOUT[1], settings.CANVAS_TIMEOUT_READ),
    )
    # The same limiter as every Canvas call (shared through Redis in production), waiting less for a slot.
    limiter = get_limiter(
        settings.CANVAS_LIMITER_URL, max_in_flight=settings.CANVAS_MAX_IN_FLIGHT, max_wait=CANVAS_SLOT_WAIT
    )
    client = admin_client(timeout=timeout, max_retries=0, max_throttle_retries=0, limiter=limiter)
    client.get_user("self")
