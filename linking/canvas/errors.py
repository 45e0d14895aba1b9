"""The typed errors the Canvas client raises, and how a Canvas error response maps onto them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import requests

from .redaction import redact


class CanvasError(Exception):
    """Canvas answered with an error, or could not be asked.

    ``status`` is the HTTP status (None when no response came back), ``messages`` the Canvas error
    messages, ``method`` and ``path`` the request (path and query, secrets redacted) and ``errors`` the
    ``errors`` member of the body as Canvas sent it (a list, or the validation-error object). The token
    is never part of an error.
    """

    def __init__(
        self,
        *,
        status: int | None = None,
        messages: tuple[str, ...] | list[str] = (),
        method: str = "",
        path: str = "",
        errors: Any = None,
    ) -> None:
        self.status = status
        self.messages = tuple(redact(message) for message in messages)
        self.method = method
        self.path = path
        self.errors = errors
        super().__init__(str(self))

    def __str__(self) -> str:
        detail = "; ".join(self.messages) or type(self).__name__
        return f"{self.method} {self.path} -> {self.status}: {detail}"

    def __reduce__(self) -> tuple:
        # Celery pickles task exceptions; the keyword-only constructor needs the state restored.
        return (self.__class__, (), self.__dict__)


class CanvasNotFound(CanvasError):
    """404: the user does not exist (or was deleted), or there is no such link."""


class CanvasNotAuthorized(CanvasError):
    """The token is fine but may not do this (401 or 403 "user not authorized", insufficient scopes).

    Pairing-code creation also answers this for a student with no live enrolment.
    """


class CanvasInvalidToken(CanvasError):
    """401 with ``WWW-Authenticate``: no, unknown, expired or revoked token. Get a new token."""


class CanvasValidationError(CanvasError):
    """400 or 422: Canvas rejected the parameters."""


class CanvasInvalidPairingCode(CanvasValidationError):
    """The pairing code is wrong, expired or already used (the code is gone either way)."""


class CanvasLoginTaken(CanvasValidationError):
    """User creation failed because the login (``pseudonym[unique_id]``) already exists."""


class CanvasThrottled(CanvasError):
    """403 "Rate Limit Exceeded" after every throttle retry. Canvas did not process the request."""


class CanvasTransient(CanvasError):
    """5xx, timeout or connection failure that outlasted the retries (or a POST, which is not retried).

    ``may_have_happened`` is True when Canvas may have processed the request: check Canvas before
    repeating a POST.
    """

    def __init__(self, *, may_have_happened: bool = True, **kwargs: Any) -> None:
        self.may_have_happened = may_have_happened
        super().__init__(**kwargs)


class CanvasNoLinkCreated(CanvasError):
    """Canvas answered 200 but created no link (observing yourself, or no shared root account).

    A pairing code used in that request is consumed all the same.
    """


class CanvasAmbiguousMatch(CanvasError):
    """An exact-match lookup found more than one user; the caller must decide (never guess)."""


# -- mapping responses to errors ------------------------------------------------------------------


def is_throttled(response: requests.Response) -> bool:
    return (
        response.status_code == 403
        and "json" not in response.headers.get("Content-Type", "")
        and "Rate Limit Exceeded" in response.text
    )


def _error_body(response: requests.Response) -> tuple[Any, list[str]]:
    """The ``errors`` member and the flat list of messages, for either of Canvas's error styles."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return None, [text[:200]] if text else []
    if not isinstance(body, dict):
        return None, []
    errors = body.get("errors")
    messages: list[str] = []
    if isinstance(errors, list):
        for entry in errors:
            if isinstance(entry, dict) and entry.get("message"):
                messages.append(str(entry["message"]))
            elif isinstance(entry, str):
                messages.append(entry)
    elif isinstance(errors, dict):
        messages = [f"{path}: {entry.get('message', entry.get('type', ''))}" for path, entry in _fields(errors)]
    elif body.get("message"):
        messages.append(str(body["message"]))
    elif body.get("error"):
        messages.append(str(body.get("error_description") or body["error"]))
    return errors, messages


def _fields(errors: Any, prefix: str = "") -> Iterator[tuple[str, dict]]:
    """Walk the validation-error object: yields ("pseudonym.unique_id", {"type": "taken", ...})."""
    if isinstance(errors, dict):
        for key, value in errors.items():
            yield from _fields(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(errors, list):
        for entry in errors:
            if isinstance(entry, dict) and ("type" in entry or "message" in entry):
                yield prefix, entry
            else:
                yield from _fields(entry, prefix)
    elif isinstance(errors, str):
        yield prefix, {"message": errors}


def error_for(response: requests.Response, method: str, path: str) -> CanvasError:
    status = response.status_code
    errors, messages = _error_body(response)
    details: dict[str, Any] = {
        "status": status,
        "messages": messages,
        "method": method,
        "path": path,
        "errors": errors,
    }
    text = " ".join(messages).lower()
    if is_throttled(response):
        return CanvasThrottled(**details)
    if status in (401, 403):
        if "not authorized" in text or "insufficient scopes" in text:
            return CanvasNotAuthorized(**details)
        if status == 401 and (
            "WWW-Authenticate" in response.headers or "access token" in text or "authorization required" in text
        ):
            return CanvasInvalidToken(**details)
        return CanvasNotAuthorized(**details)
    if status == 404:
        return CanvasNotFound(**details)
    if status in (400, 422):
        fields = list(_fields(errors)) if isinstance(errors, dict) else []
        if "invalid pairing code" in text or any(name.startswith("pairing_code") for name, _ in fields):
            return CanvasInvalidPairingCode(**details)
        if any(name == "pseudonym.unique_id" and entry.get("type") == "taken" for name, entry in fields):
            return CanvasLoginTaken(**details)
        return CanvasValidationError(**details)
    if status >= 500:
        return CanvasTransient(may_have_happened=True, **details)
    return CanvasError(**details)
