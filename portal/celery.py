"""The Celery app. Start a worker with `celery -A portal worker`."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
# Every CELERY_* Django setting configures Celery, so the worker and the web read one environment.
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
