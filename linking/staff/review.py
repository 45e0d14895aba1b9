"""Staff console: review."""

urlpatterns: list = []
