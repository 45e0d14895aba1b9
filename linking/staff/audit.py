"""Staff console: audit."""

urlpatterns: list = []
