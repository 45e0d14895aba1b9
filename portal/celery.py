"""The Celery app. Start a worker with `celery -A portal worker`."""

import os

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
# Every CELERY_* Django setting configures Celery, so the worker and the web read one environment.
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@after_setup_logger.connect
@after_setup_task_logger.connect
def redact_secrets_in_worker_logs(logger, **kwargs):
    """A worker (and beat) writes its log through Celery's own handlers, not settings.LOGGING's: they hide
    secrets too, and write JSON lines when LOG_FORMAT=json, as the web does."""
    from django.conf import settings

    from linking.canvas.redaction import RedactSecretsFilter
    from portal.logs import JsonFormatter

    for handler in logger.handlers:
        handler.addFilter(RedactSecretsFilter())
        if settings.LOG_FORMAT == "json":
            handler.setFormatter(JsonFormatter())
