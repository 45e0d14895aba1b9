from django.apps import AppConfig


class CanvasOAuthConfig(AppConfig):
    name = "linking.canvas_oauth"
    label = "canvas_oauth"
    verbose_name = "Sign in with Canvas"
