"""Every staff URL lives under /staff/; each POST action has its own URL."""

from django.urls import path  # noqa: F401 - the console's modules add their patterns below

urlpatterns: list = []
