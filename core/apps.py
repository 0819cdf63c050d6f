from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Generic helpers every app may use (display formats, request parameters, safe CSV).
    It imports no app of the project."""

    name = "core"
    verbose_name = "Core"
