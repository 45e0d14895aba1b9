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
    """A worker writes its log through Celery's own handlers, not settings.LOGGING's: they hide secrets too."""
    from linking.canvas.redaction import RedactSecretsFilter

    for handler in logger.handlers:
        handler.addFilter(RedactSecretsFilter())
