from django.apps import AppConfig


class FinalesyncConfig(AppConfig):
    name = "finalesync"
    verbose_name = "Finale sync"

    def ready(self):
        from . import checks  # noqa: F401 - registers the system checks
