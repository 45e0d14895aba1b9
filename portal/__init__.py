# Loaded with Django so that @shared_task binds to this app and `.delay()` reaches the broker.
from .celery import app as celery_app

__all__ = ("celery_app",)
