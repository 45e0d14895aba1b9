"""Staff console: letters."""

urlpatterns: list = []
