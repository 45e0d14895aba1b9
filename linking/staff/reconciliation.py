"""Staff console: reconciliation."""

urlpatterns: list = []
