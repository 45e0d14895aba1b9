"""Log lines as JSON, one object a line, for a log collector (``LOG_FORMAT=json``).

Used by the web (settings.LOGGING), the worker and beat (portal/celery.py) and gunicorn's own log
(portal/gunicorn_config.py). Every handler keeps the redaction filter (linking.canvas.redaction), which
rewrites the message; this formatter also redacts what the filter does not see: the text of an
exception and the fields a call passes in ``extra``.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from celery import current_task

from linking.canvas.redaction import redact_log_message

# What every LogRecord carries (and what formatters add to it): the rest came in through ``extra``.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
    # Added by Django's runserver formatter and by Celery's task formatter.
    "server_time",
    "task_id",
    "task_name",
}


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message"}``, plus ``task_id`` and ``task`` inside a Celery task,
    ``exception`` or ``stack`` when the record has one, and the plain values (text, numbers, booleans)
    passed in ``extra``; other ``extra`` values (Django's request object, say) are left out, since their
    text could carry a query string."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if current_task and current_task.request.id:
            entry["task_id"] = current_task.request.id
            entry["task"] = current_task.name
        for key, value in vars(record).items():
            if key in _RECORD_ATTRIBUTES or key in entry:
                continue
            if isinstance(value, str):
                entry[key] = redact_log_message(value)
            elif value is None or isinstance(value, bool | int | float):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = redact_log_message(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = redact_log_message(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False, default=str)
