"""Collecting a summary of the Canvas calls made while some work runs, for its audit event.

    with record_canvas_calls() as calls:
        client.link(observer_id, student_id)
    audit_event_record(..., canvas_calls=calls)

Every attempt the client makes (retries included) is appended as ``{"method", "path", "status",
"outcome"}``. The path is the one the client logs, already redacted; tokens travel in a header and
never reach it. The recorders live in a context variable, so a thread or asyncio task sees only its own
calls, and nested recorders each get every call made inside them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_recorders: ContextVar[tuple[list[dict], ...]] = ContextVar("canvas_call_recorders", default=())


@contextmanager
def record_canvas_calls() -> Iterator[list[dict]]:
    """Yield a list that collects every Canvas call attempted in this context until the block ends."""
    calls: list[dict] = []
    token = _recorders.set((*_recorders.get(), calls))
    try:
        yield calls
    finally:
        _recorders.reset(token)


def canvas_call_note(*, method: str, path: str, status: int | None, outcome: str) -> None:
    """Hand one attempt to the recorders active in this context (the client calls this)."""
    for calls in _recorders.get():
        calls.append({"method": method, "path": path, "status": status, "outcome": outcome})
