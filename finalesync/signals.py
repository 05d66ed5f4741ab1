"""What the engine tells the layers above it. The engine imports neither `retries` nor `health`; they connect
their receivers in their AppConfig.ready(), and receivers run in INSTALLED_APPS order (retries, then health).

`run_finished(sender=SyncRun, result=RunResult)`: every sync or restore run that ended (skipped ones included).
A receiver may return a dict of follow-ups (e.g. `{"retry_enqueued": True, "retry_at": ...}`); the engine
hands them back to its caller in `RunResult.followups`, so `runsync --json` can say what happens next.
"""

from django.dispatch import Signal

run_finished = Signal()
