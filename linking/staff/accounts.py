"""Staff console: accounts."""

urlpatterns: list = []
