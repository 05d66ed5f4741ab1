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


@register()
def check_download_deadline(app_configs, **kwargs):
    """One download must end before the type's lock lease and the task that runs it do: otherwise a second
    worker takes the type over (or django-q2 kills the task) while the first still downloads."""
    problems = []
    total = settings.FINALE_TOTAL_TIMEOUT
    if total <= 0:
        problems.append(
            Error(
                f"FINALE_TOTAL_TIMEOUT ({total:g} s) must be a positive number of seconds",
                hint="It bounds one whole download from Finale; the default is 900.",
                id="finalesync.E002",
            )
        )
        return problems
    if total >= settings.SYNC_LOCK_TTL_SECONDS:
        problems.append(
            Error(
                f"FINALE_TOTAL_TIMEOUT ({total:g} s) must be shorter than SYNC_LOCK_TTL_SECONDS "
                f"({settings.SYNC_LOCK_TTL_SECONDS} s)",
                hint="A download that outlives the type's lock lets a second sync of the type start; lower "
                "FINALE_TOTAL_TIMEOUT or raise SYNC_LOCK_TTL_SECONDS.",
                id="finalesync.E003",
            )
        )
    timeout = settings.Q_CLUSTER.get("timeout")
    if timeout and total >= timeout:
        problems.append(
            Error(
                f"FINALE_TOTAL_TIMEOUT ({total:g} s) must be shorter than django-q2's task timeout "
                f"(Q_CLUSTER['timeout'], Q_TIMEOUT: {timeout} s)",
                hint="Otherwise django-q2 kills a scheduled sync mid-download instead of it failing cleanly "
                "with a timeout; lower FINALE_TOTAL_TIMEOUT or raise Q_TIMEOUT (and Q_RETRY above it).",
                id="finalesync.E004",
            )
        )
    return problems
