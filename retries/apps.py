from django.apps import AppConfig


class RetriesConfig(AppConfig):
    name = "retries"
    verbose_name = "Retries and failures"

    def ready(self):
        from finalesync.signals import run_finished

        from .receivers import on_run_finished

        run_finished.connect(on_run_finished, dispatch_uid="retries.on_run_finished")
