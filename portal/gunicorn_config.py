"""gunicorn's settings for the portal: ``gunicorn -c python:portal.gunicorn_config portal.wsgi:application``.

Read by gunicorn's master before Django is loaded, so only the environment is read here, the same
``WEB_CONCURRENCY`` and ``LOG_FORMAT`` the .env file sets; anything on the command line wins.
"""

import multiprocessing
import os
from pathlib import Path

bind = "0.0.0.0:8000"

# Sync workers, 2 x CPUs + 1 (gunicorn's advice, and what bench/ measured as fastest for our pages, none of
# which wait on Canvas). At most 9 by default: each keeps a PostgreSQL connection (CONN_MAX_AGE), and the
# container sees every CPU of the host, not its share. WEB_CONCURRENCY sets the number outright.
_default_workers = min(2 * multiprocessing.cpu_count() + 1, 9)
workers = int(os.environ.get("WEB_CONCURRENCY") or _default_workers)

# /healthz waits at most a few seconds on Canvas; nothing else waits on anything outside the portal.
timeout = 30
graceful_timeout = 30

# Workers' heartbeat files on /dev/shm rather than the container's overlay filesystem, where a slow
# write can make gunicorn think a healthy worker hung (gunicorn's own advice for Docker).
if Path("/dev/shm").is_dir():  # noqa: S108 - a directory in memory, not a predictable temporary file
    worker_tmp_dir = "/dev/shm"  # noqa: S108

# gunicorn's own lines (workers starting, timing out) go through the same JSON formatter and redaction as
# Django's when LOG_FORMAT=json. No access log, in either format: the TLS proxy keeps one, Django logs every
# error, and gunicorn's plain access log would carry the pairing code in an "Add a child" link's query.
if os.environ.get("LOG_FORMAT", "").strip().lower() == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact_secrets": {"()": "linking.canvas.redaction.RedactSecretsFilter"}},
        "formatters": {"json": {"()": "portal.logs.JsonFormatter"}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "filters": ["redact_secrets"],
                "stream": "ext://sys.stderr",
            },
            "nowhere": {"class": "logging.NullHandler"},
        },
        "loggers": {
            "gunicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False},
            # A logging configuration turns gunicorn's access log on; this turns it off again.
            "gunicorn.access": {"handlers": ["nowhere"], "propagate": False},
        },
        "root": {"handlers": ["console"], "level": "INFO"},
    }
