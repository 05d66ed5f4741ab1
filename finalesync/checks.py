"""System checks for settings that only go wrong under load: a task handed out twice, a lease that expires
under a live worker."""

from django.conf import settings
from django.core.checks import Error, Warning, register


@register()
def check_timeouts(app_configs, **kwargs):
    problems = []
    q = settings.Q_CLUSTER
    if q.get("timeout") and q.get("retry") and q["timeout"] >= q["retry"]:
        problems.append(
            Error(
                f"Q_CLUSTER timeout ({q['timeout']} s) must be shorter than retry ({q['retry']} s)",
                hint="Otherwise django-q2 hands a long sync to a second worker while the first still runs.",
                id="finalesync.E001",
            )
        )
    if q.get("timeout") and settings.RETRY_LEASE_SECONDS < q["timeout"]:
        problems.append(
            Warning(
                f"RETRY_LEASE_SECONDS ({settings.RETRY_LEASE_SECONDS}) is shorter than the task timeout ({q['timeout']})",
                hint="A retry still running could be reclaimed and run twice; raise RETRY_LEASE_SECONDS.",
                id="finalesync.W001",
            )
        )
    return problems
