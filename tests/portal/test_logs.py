"""LOG_FORMAT: text by default, one JSON object a line with ``json`` (portal/logs.py), secrets redacted either way.

The settings are read at import, so the web's logging is tried in a fresh interpreter; the formatter's
details (exceptions, ``extra``, a Celery task) in this one. The processes as Compose runs them are in
tests/security/test_production_processes.py.
"""

from __future__ import annotations

import io
import json
import logging

import pytest
from celery import Celery

from portal.logs import JsonFormatter
from tests.portal.test_settings import load_settings

LOG_A_CODE = (
    "(__import__('django').setup(), "
    "__import__('logging').getLogger('linking.views').warning('GET /family/add/?code=%s', 'AbC123'))"
)


def test_the_web_writes_one_json_object_a_line_with_the_code_redacted():
    result = load_settings(LOG_A_CODE, DEBUG="1", LOG_FORMAT="json")

    assert result.returncode == 0, result.stderr
    (line,) = result.stderr.strip().splitlines()
    entry = json.loads(line)
    assert set(entry) == {"time", "level", "logger", "message"}
    assert (entry["level"], entry["logger"]) == ("WARNING", "linking.views")
    assert entry["message"] == "GET /family/add/?code=[redacted]"
    assert entry["time"].endswith("+00:00")
    assert "AbC123" not in result.stderr


def test_text_stays_the_default_and_is_redacted_too():
    result = load_settings(LOG_A_CODE, DEBUG="1")

    assert result.returncode == 0, result.stderr
    assert "WARNING linking.views GET /family/add/?code=[redacted]" in result.stderr
    assert not result.stderr.lstrip().startswith("{")
    assert "AbC123" not in result.stderr


def test_it_refuses_a_log_format_it_does_not_know():
    result = load_settings("settings.LOG_FORMAT", DEBUG="1", LOG_FORMAT="xml")

    assert result.returncode != 0
    assert "LOG_FORMAT must be text or json" in result.stderr


def test_runservers_request_log_is_json_too():
    result = load_settings("settings.LOGGING['handlers']['django.server']['formatter']", DEBUG="1", LOG_FORMAT="json")

    assert result.stdout.strip() == "'json'"


# -- the formatter --------------------------------------------------------------------------------
@pytest.fixture
def json_log():
    """A logger writing through JsonFormatter into a buffer; returns (logger, read the entries)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(f"tests.json.{id(stream)}")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)


def test_an_exception_is_one_field_of_the_line_with_its_secrets_redacted(json_log):
    logger, entries = json_log
    try:
        raise ValueError("could not open /family/add/?code=AbC123")
    except ValueError:
        logger.exception("it failed")

    (entry,) = entries()
    assert entry["message"] == "it failed"
    assert "ValueError: could not open /family/add/?code=[redacted]" in entry["exception"]
    assert "AbC123" not in json.dumps(entry)


def test_it_keeps_plain_extra_fields_redacted_and_leaves_objects_out(json_log):
    logger, entries = json_log

    logger.info(
        "canvas call",
        extra={"canvas_status": 200, "canvas_path": "/api/v1/x?access_token=s3cr3t", "ok": True, "request": object()},
    )

    (entry,) = entries()
    assert entry["canvas_status"] == 200 and entry["ok"] is True
    assert entry["canvas_path"] == "/api/v1/x?access_token=[redacted]"
    assert "request" not in entry


def test_inside_a_celery_task_each_line_names_the_task_and_its_id(json_log):
    logger, entries = json_log
    # Not the current app: shared tasks elsewhere must keep finding the portal's.
    tasks = Celery("tests-json-log", broker="memory://", set_as_current=False)

    @tasks.task(name="tests.log_something")
    def log_something():
        logger.info("working")

    result = log_something.apply()
    logger.info("outside")

    inside, outside = entries()
    assert (inside["task"], inside["task_id"]) == ("tests.log_something", result.id)
    assert "task_id" not in outside
