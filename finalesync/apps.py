from django.apps import AppConfig


class FinalesyncConfig(AppConfig):
    name = "finalesync"
    verbose_name = "Finale sync"
