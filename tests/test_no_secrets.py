"""No page shows a secret: store credentials with known values the way an operator would (admin, encrypted),
sync with them, fail with them, then fetch every page, admin page and JSON endpoint and search the bodies."""

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse

from finalesync.models import DataTypeConfig, FinaleConnection, SyncRun
from finalesync.sync import ensure_configs, sync_data_type
from health.models import AlertChannel
from retries.queue import enqueue_retry

from .conftest import SIM_SECRET
from .opsdata import make_user

URL_TOKEN = "rpt-token-Qw93-do-not-leak"
HOOK_SECRET = "hook-Zz17-do-not-leak"
SIGNING_SECRET = "sign-Kk29-do-not-leak"


def stored_credentials(sim, settings):
    settings.FINALE_BASE_URL = sim.base_url
    settings.FINALE_ACCOUNT = ""
    settings.FINALE_API_KEY = ""
    settings.FINALE_API_SECRET = ""
    settings.FINALE_REPORT_URLS = {"inventory": "", "vendors": "", "boms": ""}
    settings.FINALE_READ_TIMEOUT = settings.FINALE_CONNECT_TIMEOUT = 1.0
    FinaleConnection.objects.update_or_create(
        pk=1,
        defaults=dict(account=sim.account, api_key=sim.api_key, api_secret=SIM_SECRET),
    )
    for name, config in ensure_configs().items():
        if name != "purchase_orders":
            config.report_url = f"{sim.report_url(name)}&apiToken={URL_TOKEN}"
            config.save(update_fields=["report_url"])


def pages(user):
    """Every page `user` can reach, with the objects there are now."""
    request = RequestFactory().get("/")
    request.user = user
    urls = ["/", "/dashboard/live/", "/health/", "/metrics", reverse("admin:index")]
    for model, model_admin in admin.site._registry.items():
        meta = model._meta
        urls.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
        if model_admin.has_add_permission(request):
            urls.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_add"))
        for obj in model_admin.get_queryset(request).order_by("-pk")[:3]:
            urls.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk]))
    for run in SyncRun.objects.filter(outcome="success").exclude(history_seq=None)[:2]:
        urls.append(reverse("restore", args=[run.pk]))
        urls.append(reverse("run-changes", args=[run.pk]))
        urls.append(reverse("admin:finalesync_syncrun_restore", args=[run.pk]))
    for run in SyncRun.objects.filter(error_code__startswith="suspicious")[:1]:
        urls.append(reverse("confirm-sync", args=[run.pk]))
    return urls


@pytest.mark.django_db
def test_no_page_admin_page_or_json_endpoint_shows_a_secret(client, sim, settings):
    stored_credentials(sim, settings)
    for name in ("inventory", "vendors", "boms", "purchase_orders"):
        assert sync_data_type(data_type=name, force=True).outcome == "success", name
    sim.set_fault("vendors", "http_401")
    sim.set_fault("boms", "http_503")
    sim.set_fault("inventory", "empty")
    for name in ("inventory", "vendors", "boms"):
        assert sync_data_type(data_type=name).outcome != "success"
    enqueue_retry(data_type="purchase_orders", error="HTTP 503")
    AlertChannel.objects.create(
        name="ops-hook",
        kind="webhook",
        url=f"https://hooks.example.test/services/{HOOK_SECRET}",
        signing_secret=SIGNING_SECRET,
    )

    root = make_user("root", superuser=True)
    client.force_login(root)
    client.post(reverse("pause", args=["boms"]))
    client.post(reverse("sync-now", args=["inventory"]))
    secrets = [SIM_SECRET, URL_TOKEN, sim.report_url("inventory"), HOOK_SECRET, SIGNING_SECRET]
    urls = pages(root)
    assert len(urls) > 40
    for url in urls:
        response = client.get(url)
        assert response.status_code in (200, 503), url  # /health/ is 503: vendors is unhealthy
        body = response.content.decode()
        for secret in secrets:
            assert secret not in body, f"{url} shows a secret"

    client.logout()
    for url in ("/health/", "/metrics"):
        body = client.get(url).content.decode()
        assert all(secret not in body for secret in secrets)


@pytest.mark.django_db
def test_the_stored_values_are_the_ones_in_use(sim, settings):
    """Guard for the test above: the credentials it searches for really are configured and working."""
    stored_credentials(sim, settings)
    assert FinaleConnection.objects.get().api_secret == SIM_SECRET
    assert URL_TOKEN in DataTypeConfig.objects.get(data_type="vendors").report_url
    assert sync_data_type(data_type="vendors", force=True).outcome == "success"
