"""Staff console: imports."""

urlpatterns: list = []
