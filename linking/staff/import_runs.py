"""Staff console: import_runs."""

urlpatterns: list = []
