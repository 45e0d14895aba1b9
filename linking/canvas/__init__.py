"""The portal's one Canvas LMS API client.

Every call goes through :meth:`CanvasClient.request`: bearer token, mandatory ``(connect, read)``
timeouts, ``rel="next"`` pagination, plain data back (dicts, lists, :class:`PairingCode`), typed
:class:`CanvasError` subclasses, the retry policy described in :mod:`linking.canvas.client`, and logs
without secrets. The wire behaviour it relies on is ``canvas-contract.md``; the reference for callers
is ``docs/canvas-client.md``.

    from linking.canvas import admin_client, CanvasInvalidPairingCode
    student = admin_client().link_with_pairing_code(parent_canvas_id, code)
"""

from __future__ import annotations

import enum
from typing import Any, Literal

from .client import CanvasClient, PairingCode, parse_timestamp, user_ref
from .errors import (
    CanvasAmbiguousMatch,
    CanvasError,
    CanvasInvalidPairingCode,
    CanvasInvalidToken,
    CanvasLoginTaken,
    CanvasNoLinkCreated,
    CanvasNotAuthorized,
    CanvasNotFound,
    CanvasThrottled,
    CanvasTransient,
    CanvasValidationError,
)
from .limiter import DEFAULT_MAX_IN_FLIGHT, CanvasSlotTimeout, LocalLimiter, RedisLimiter, get_limiter
from .recording import record_canvas_calls
from .redaction import redact

__all__ = [
    "ADMIN",
    "CanvasAmbiguousMatch",
    "CanvasClient",
    "CanvasError",
    "CanvasInvalidPairingCode",
    "CanvasInvalidToken",
    "CanvasLoginTaken",
    "CanvasNoLinkCreated",
    "CanvasNotAuthorized",
    "CanvasNotFound",
    "CanvasSlotTimeout",
    "CanvasThrottled",
    "CanvasTransient",
    "CanvasValidationError",
    "LocalLimiter",
    "PairingCode",
    "RedisLimiter",
    "admin_client",
    "canvas_client",
    "canvas_limiter",
    "parse_timestamp",
    "record_canvas_calls",
    "redact",
    "user_ref",
]


class _Default(enum.Enum):
    ADMIN = "admin"


ADMIN = _Default.ADMIN
"""The default of :func:`canvas_client`: act with ``CANVAS_ADMIN_TOKEN``."""


def canvas_client(token: str | Literal[_Default.ADMIN] = ADMIN, **options: Any) -> CanvasClient:
    """A client for the configured Canvas, acting with ``token`` (a student's OAuth token) or, by
    default, the admin token.

    Reads ``CANVAS_BASE_URL``, ``CANVAS_ADMIN_TOKEN``, ``CANVAS_ACCOUNT_ID`` (default ``self``),
    ``CANVAS_TIMEOUT_CONNECT`` (5 s) and ``CANVAS_TIMEOUT_READ`` (30 s); ``options`` go to
    :class:`CanvasClient`; every client shares the process-wide :func:`canvas_limiter`. An explicit
    ``None`` or empty token raises ValueError instead of quietly becoming the admin: a missing student
    token must never turn into admin rights.
    """
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    base_url = getattr(settings, "CANVAS_BASE_URL", "")
    if not base_url:
        raise ImproperlyConfigured("CANVAS_BASE_URL is not set")
    if token is ADMIN:
        token = getattr(settings, "CANVAS_ADMIN_TOKEN", "")
        if not token:
            raise ImproperlyConfigured("CANVAS_ADMIN_TOKEN is not set")
    elif not token:
        raise ValueError("no Canvas token given (use admin_client() to act as the admin)")
    options.setdefault("account_id", getattr(settings, "CANVAS_ACCOUNT_ID", "self") or "self")
    options.setdefault(
        "timeout",
        (
            float(getattr(settings, "CANVAS_TIMEOUT_CONNECT", 5.0)),
            float(getattr(settings, "CANVAS_TIMEOUT_READ", 30.0)),
        ),
    )
    options.setdefault("limiter", canvas_limiter())
    return CanvasClient(base_url=base_url, token=token, **options)


def canvas_limiter() -> LocalLimiter | RedisLimiter:
    """The process's limiter of requests in flight per token, from ``CANVAS_LIMITER_URL`` (Redis,
    shared by every worker; empty: this process only), ``CANVAS_MAX_IN_FLIGHT`` and
    ``CANVAS_LIMITER_MAX_WAIT``."""
    from django.conf import settings

    return get_limiter(
        getattr(settings, "CANVAS_LIMITER_URL", ""),
        max_in_flight=int(getattr(settings, "CANVAS_MAX_IN_FLIGHT", DEFAULT_MAX_IN_FLIGHT)),
        max_wait=float(getattr(settings, "CANVAS_LIMITER_MAX_WAIT", 30.0)),
    )


def admin_client(**options: Any) -> CanvasClient:
    """A client acting with ``CANVAS_ADMIN_TOKEN`` (see :func:`canvas_client`)."""
    return canvas_client(ADMIN, **options)
