"""The process-wide HTTP session, bearer auth, transport-failure triage and per-token pacing state."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from http.cookiejar import DefaultCookiePolicy

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from .redaction import REDACTED

POOL_SIZE = 32

# What a request can fail with before Canvas answers; everything else from requests is our bug.
TRANSPORT_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)

_session: requests.Session | None = None
_session_lock = threading.Lock()


def _new_session() -> requests.Session:
    session = requests.Session()
    # One session serves every token: a cookie Canvas sets for one user must never ride along with
    # another user's request, so refuse all cookies.
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    # urllib3 must not retry on its own: the retry policy (which depends on the method) is ours.
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=POOL_SIZE, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers.update({"Accept": "application/json", "User-Agent": "canvas-family-portal"})
    return session


def get_session() -> requests.Session:
    """The process-wide session (created on first use; shared by all threads and tokens)."""
    global _session
    if _session is None:
        with _session_lock:
            if _session is None:
                _session = _new_session()
    return _session


def _forget_session_in_child() -> None:
    # A forked worker (Celery prefork, gunicorn) must not share the parent's pooled sockets.
    global _session, _session_lock
    _session = None
    _session_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_session_in_child)


class BearerAuth(requests.auth.AuthBase):
    """Sets the Authorization header; passing it as ``auth`` also stops requests applying ``.netrc``."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return f"<BearerAuth {REDACTED}>"


def nothing_was_sent(exc: requests.RequestException) -> bool:
    """True only when the request certainly never reached Canvas (so even a POST may be repeated)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, (requests.exceptions.SSLError, requests.exceptions.ProxyError)):
        return False
    cause = exc.args[0] if exc.args else None
    if isinstance(cause, urllib3.exceptions.MaxRetryError):
        # NewConnectionError (refused, DNS) is a ConnectTimeoutError in urllib3 2: no byte was sent.
        return isinstance(cause.reason, urllib3.exceptions.ConnectTimeoutError)
    return False


# -- rate-limit allowance, per token --------------------------------------------------------------


@dataclass
class _Allowance:
    remaining: float
    seen_at: float


# Canvas keeps one bucket per token, shared by every client object (and thread) using that token.
# Keys are hashes of (base URL, token), never the token itself.
_allowances: dict[str, _Allowance] = {}
_allowances_lock = threading.Lock()


def remember_allowance(key: str, response: requests.Response) -> None:
    """Note the response's ``X-Rate-Limit-Remaining`` for the token ``key``."""
    try:
        remaining = float(response.headers["X-Rate-Limit-Remaining"])
    except (KeyError, ValueError):
        return
    now = time.monotonic()
    with _allowances_lock:
        _allowances[key] = _Allowance(remaining, now)
        if len(_allowances) > 1024:  # forget buckets that drained long ago
            for other, allowance in list(_allowances.items()):
                if now - allowance.seen_at > 600:
                    del _allowances[other]


def estimated_allowance(key: str, *, outflow_per_second: float) -> float | None:
    """The token's remaining allowance now, or None when no response has told us yet."""
    with _allowances_lock:
        allowance = _allowances.get(key)
    if allowance is None:
        return None
    # The bucket leaks at the outflow rate, so an old reading is better than it looks.
    return allowance.remaining + outflow_per_second * (time.monotonic() - allowance.seen_at)


def forget_allowances() -> None:
    """Drop every remembered allowance (tests; or after the Canvas admin resets throttling)."""
    with _allowances_lock:
        _allowances.clear()
