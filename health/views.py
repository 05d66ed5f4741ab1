"""The operator's pages: the dashboard (and its live partial), /health/, /metrics and the action buttons.

Thin: reading goes through health/dashboard.py and health/system.py, every button through the actions
modules (finalesync/actions.py, retries/actions.py), the same functions the admin and the commands call.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from finalesync import actions, history
from finalesync.audit import ActionRefused, Actor
from finalesync.models import AuditLog, SyncRun
from retries import actions as retry_actions

from . import metrics as prometheus
from .dashboard import dashboard_context
from .system import get_sync_system_health

TYPE_PERM = "finalesync.change_datatypeconfig"
RETRY_PERM = "retries.change_retryitem"
RESTORE_PERM = "finalesync.restore_syncrun"
CHANGES_PAGE = 100


@never_cache
@staff_member_required
def dashboard(request):
    return render(request, "health/dashboard.html", dashboard_context())


@never_cache
@staff_member_required
def dashboard_live(request):
    """The refreshing part of the dashboard, fetched by dashboard.js every few seconds."""
    return render(request, "health/_live.html", dashboard_context())


@never_cache
@require_GET
def health_json(request):
    """The system health as JSON: 503 when an active type is unhealthy. Anonymous callers get statuses
    only (no error texts, no figures); staff get everything."""
    health = get_sync_system_health()
    public = not (request.user.is_authenticated and request.user.is_staff)
    response = JsonResponse(health.as_json(public=public), status=health.http_status)
    # A 503 here is the answer, not a server error: keep every monitor poll out of the error log.
    response._has_been_logged = True
    return response


def _is_staff(request) -> bool:
    return request.user.is_authenticated and request.user.is_active and request.user.is_staff


def _has_metrics_token(request) -> bool:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    expected = settings.METRICS_TOKEN
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), expected.encode())


@never_cache
@require_GET
def metrics(request):
    """Prometheus text. With METRICS_TOKEN set: the bearer token or a staff session, else 401. Without one:
    staff get every metric, anyone else the status gauges only (no more than anonymous `/health/`)."""
    full = _is_staff(request) or bool(settings.METRICS_TOKEN and _has_metrics_token(request))
    if settings.METRICS_TOKEN and not full:
        response = HttpResponse("Authorization: Bearer <METRICS_TOKEN> required\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="finalesync metrics"'
        return response
    body = prometheus.render(get_sync_system_health(), public=not full)
    return HttpResponse(body, content_type=prometheus.CONTENT_TYPE)


# --- buttons -------------------------------------------------------------------------------------------------
def _back(request, anchor: str = ""):
    target = request.POST.get("next") or ""
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        target = reverse("dashboard") + anchor
    return redirect(target)


def _act(request, action, anchor: str = "", **kwargs):
    actor = Actor.for_user(request.user, AuditLog.Source.DASHBOARD)
    reason = request.POST.get("reason", "").strip()[:500]
    try:
        messages.success(request, action(actor=actor, reason=reason, **kwargs))
    except ActionRefused as exc:
        messages.error(request, str(exc))
    return _back(request, anchor)


@require_POST
@staff_member_required
@permission_required(TYPE_PERM, raise_exception=True)
def sync_now(request, data_type):
    force = request.POST.get("force") == "1"
    return _act(request, actions.sync_now, data_type=data_type, force=force)


@require_POST
@staff_member_required
@permission_required(TYPE_PERM, raise_exception=True)
def pause(request, data_type):
    return _act(request, actions.pause, data_type=data_type)


@require_POST
@staff_member_required
@permission_required(TYPE_PERM, raise_exception=True)
def resume(request, data_type):
    return _act(request, actions.resume, data_type=data_type)


@require_POST
@staff_member_required
@permission_required(TYPE_PERM, raise_exception=True)
def snooze(request, data_type):
    try:
        hours = float(request.POST.get("hours", ""))
    except ValueError:
        hours = 0.0
    return _act(request, actions.snooze, data_type=data_type, hours=hours)


@require_POST
@staff_member_required
@permission_required(RETRY_PERM, raise_exception=True)
def retry_now(request, item_id):
    return _act(request, retry_actions.retry_now, "#retries", item_id=item_id)


@require_POST
@staff_member_required
@permission_required(RETRY_PERM, raise_exception=True)
def cancel_retry(request, item_id):
    return _act(request, retry_actions.cancel_retry, "#retries", item_id=item_id)


@require_POST
@staff_member_required
@permission_required(RETRY_PERM, raise_exception=True)
def requeue_retry(request, item_id):
    return _act(request, retry_actions.requeue_retry, "#retries", item_id=item_id)


@never_cache
@staff_member_required
@permission_required(RESTORE_PERM, raise_exception=True)
def restore(request, run_id):
    """GET: what restoring the state after run `run_id` would change, and a confirm form. POST: queue it."""
    if request.method == "POST":
        return _act(
            request,
            actions.queue_restore,
            "#runs",
            run_id=run_id,
            pause_type=request.POST.get("pause") == "1",
        )
    try:
        preview = actions.preview_restore(run_id=run_id)
    except ActionRefused as exc:
        messages.error(request, str(exc))
        return redirect(reverse("dashboard") + "#runs")
    return render(
        request,
        "health/restore_confirm.html",
        {"preview": preview, "cancel_url": reverse("dashboard") + "#runs"},
    )


@never_cache
@staff_member_required
@permission_required(TYPE_PERM, raise_exception=True)
def confirm_sync(request, run_id):
    """GET: the evidence of a sync the checks refused (from N to M rows, emptied columns, keys affected) and
    a form to apply such a sync once. POST: queue that confirmed sync."""
    if request.method == "POST":
        return _act(request, actions.confirm_sync, "#runs", run_id=run_id)
    try:
        run = actions.refused_run(run_id)
    except ActionRefused as exc:
        messages.error(request, str(exc))
        return redirect(reverse("dashboard") + "#failures")
    evidence = run.details.get("evidence", {})
    return render(
        request,
        "health/confirm_sync.html",
        {"run": run, "evidence": evidence, "cancel_url": reverse("dashboard") + "#failures"},
    )


@never_cache
@staff_member_required
def run_changes(request, run_id):
    """What one run created, changed (old → new, changed columns only) and deleted, searchable by key; and
    with ?key=..., that key's history across runs."""
    run = SyncRun.objects.filter(pk=run_id).first()
    if run is None:
        messages.error(request, f"there is no sync run #{run_id}")
        return redirect("dashboard")
    search = request.GET.get("q", "").strip()[:200]
    key = request.GET.get("key", "").strip()[:255]
    try:
        page = max(0, int(request.GET.get("page", "0")))
    except ValueError:
        page = 0
    seq = history.run_seq(run)
    rows, total = (
        ([], 0)
        if seq is None
        else history.changes(
            run.data_type, seq=seq, search=search, offset=page * CHANGES_PAGE, limit=CHANGES_PAGE
        )
    )
    context = {
        "run": run,
        "seq": seq,
        "rows": rows,
        "total": total,
        "search": search,
        "page": page,
        "pages": (total + CHANGES_PAGE - 1) // CHANGES_PAGE,
        "key": key,
        "key_history": history.key_history(run.data_type, key) if key else None,
    }
    return render(request, "health/run_changes.html", context)
