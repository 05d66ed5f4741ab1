from django.apps import AppConfig


class HealthConfig(AppConfig):
    name = "health"
    verbose_name = "Connection health and alerts"

    def ready(self):
        from finalesync.signals import run_finished
        from retries.signals import retry_exhausted

        from .receivers import on_retry_exhausted, on_run_finished

        run_finished.connect(on_run_finished, dispatch_uid="health.on_run_finished")
        retry_exhausted.connect(on_retry_exhausted, dispatch_uid="health.on_retry_exhausted")
