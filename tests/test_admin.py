"""The admin: every model registered, history read-only, manual actions audited, credentials write-only."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.db import connection
from django.urls import reverse

from finalesync.models import AuditLog, DataTypeConfig, FinaleConnection, SyncRun
from finalesync.sync import ensure_configs, sync_data_type
from retries.models import FailureLog, RetryItem
from retries.queue import enqueue_retry

from .opsdata import bulk, health_rows, make_user

pytestmark = pytest.mark.django_db
OUR_APPS = ("finalesync", "health", "retries")
HISTORY = [SyncRun, AuditLog, FailureLog]


@pytest.fixture
def superuser(client):
    user = make_user("root", superuser=True)
    client.force_login(user)
    return user


def changelist(model):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def change(obj):
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def test_every_model_of_the_project_is_registered():
    # Row history (one <Model>Version per data type) is read on the "what changed" pages, not in the admin.
    ours = [
        m for m in apps.get_models() if m._meta.app_label in OUR_APPS and not m.__name__.endswith("Version")
    ]
    assert len(ours) >= 12
    assert [m.__name__ for m in ours if m not in admin.site._registry] == []


def test_every_changelist_and_change_page_loads_with_filters_and_search(client, superuser, finale):
    for name in ("inventory", "vendors", "boms", "purchase_orders"):
        sync_data_type(data_type=name, force=True)
    health_rows()
    bulk(failures=5, retries=5, runs=5, audit=5)
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label not in OUR_APPS:
            continue
        url = changelist(model)
        response = client.get(url)
        assert response.status_code == 200, url
        if model_admin.search_fields:
            assert client.get(url, {"q": "x"}).status_code == 200, url
        obj = model.objects.first()
        if obj is not None:
            assert client.get(change(obj)).status_code == 200, change(obj)


@pytest.mark.parametrize("model", HISTORY)
def test_history_is_read_only(client, superuser, model):
    bulk(failures=1, runs=1, audit=1)
    obj = model.objects.first()
    page = client.get(change(obj)).content.decode()
    assert 'name="_save"' not in page
    assert client.post(change(obj), {}).status_code == 403
    add = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_add")
    assert client.get(add).status_code == 403
    delete = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_delete", args=[obj.pk])
    assert client.get(delete).status_code == 403


def test_retry_admin_actions_go_through_the_actions_and_are_audited(client, superuser):
    pending = enqueue_retry(data_type="vendors", error="HTTP 503")
    failed = RetryItem.objects.create(data_type="boms", status="failed", next_retry_at=pending.next_retry_at)
    response = client.post(
        changelist(RetryItem),
        {"action": "retry_now", "_selected_action": [pending.pk, failed.pk]},
        follow=True,
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert f"Retry #{pending.pk}" in body and f"Retry #{failed.pk}" in body
    assert RetryItem.objects.get(pk=failed.pk).status == "pending"
    assert set(AuditLog.objects.values_list("source", "action", "outcome")) == {
        ("admin", "retry_now", "success")
    }

    client.post(changelist(RetryItem), {"action": "cancel", "_selected_action": [pending.pk]})
    assert RetryItem.objects.get(pk=pending.pk).status == "cancelled"
    client.post(changelist(RetryItem), {"action": "requeue", "_selected_action": [pending.pk]})
    assert RetryItem.objects.get(pk=pending.pk).status == "pending"


def test_retry_actions_need_the_change_permission(client):
    client.force_login(make_user("viewer", perms=["retries.view_retryitem"]))
    item = enqueue_retry(data_type="vendors", error="HTTP 503")
    page = client.get(changelist(RetryItem)).content.decode()
    assert 'value="retry_now"' not in page
    client.post(changelist(RetryItem), {"action": "cancel", "_selected_action": [item.pk]})
    assert RetryItem.objects.get(pk=item.pk).status == "pending"


def test_data_type_actions_sync_pause_resume(client, superuser):
    ensure_configs()
    pks = list(DataTypeConfig.objects.filter(data_type__in=["vendors", "boms"]).values_list("pk", flat=True))
    client.post(changelist(DataTypeConfig), {"action": "pause", "_selected_action": pks})
    assert set(DataTypeConfig.objects.filter(paused=True).values_list("data_type", flat=True)) == {
        "vendors",
        "boms",
    }
    client.post(changelist(DataTypeConfig), {"action": "resume", "_selected_action": pks})
    assert not DataTypeConfig.objects.filter(paused=True).exists()
    response = client.post(
        changelist(DataTypeConfig), {"action": "sync_now", "_selected_action": pks[:1]}, follow=True
    )
    assert "queued" in response.content.decode()
    assert list(AuditLog.objects.order_by("id").values_list("action", flat=True)) == [
        "pause",
        "pause",
        "resume",
        "resume",
        "sync_now",
    ]


def test_restore_from_a_sync_run_confirms_with_type_time_rows_and_changes(client, superuser, finale):
    first = sync_data_type(data_type="vendors", force=True)
    finale.mutate("vendors", ratio=0.4)
    sync_data_type(data_type="vendors", force=True)
    run = SyncRun.objects.get(pk=first.run_id)
    listing = client.get(changelist(SyncRun)).content.decode()
    url = reverse("admin:finalesync_syncrun_restore", args=[run.pk])
    assert url in listing and reverse("run-changes", args=[run.pk]) in listing

    confirm = client.get(url).content.decode()
    assert f"Restore vendors to the state after run #{run.pk}" in confirm
    assert f"{first.item_count}" in confirm and "changed" in confirm and "next scheduled sync" in confirm
    assert SyncRun.objects.filter(trigger="restore").count() == 0  # nothing happened yet

    done = client.post(url, {"reason": "admin test"}, follow=True).content.decode()
    assert "queued" in done
    entry = AuditLog.objects.get(action="restore_backup")
    assert (entry.source, entry.outcome, entry.reason) == ("admin", "queued", "admin test")
    assert SyncRun.objects.get(trigger="restore").outcome == "queued"


def test_restore_page_needs_the_restore_permission(client, finale):
    first = sync_data_type(data_type="vendors", force=True)
    client.force_login(make_user("viewer", perms=["finalesync.view_syncrun"]))
    url = reverse("admin:finalesync_syncrun_restore", args=[first.run_id])
    assert client.get(url).status_code == 403
    assert client.post(url).status_code == 403


def raw_column(table, column, pk):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def test_api_secret_is_write_only_encrypted_and_lifts_auth_failures(client, superuser, finale, settings):
    settings.FINALE_API_SECRET = ""  # the admin's value is the one in use
    FinaleConnection.objects.create(
        pk=1,
        account=finale.account,
        api_key=finale.api_key,
        api_secret="wrong-secret-1",
    )
    sync_data_type(data_type="vendors", force=True)
    assert DataTypeConfig.objects.get(data_type="vendors").needs_attention  # 401

    url = change(FinaleConnection.objects.get())
    page = client.get(url).content.decode()
    assert "wrong-secret-1" not in page and "API secret" in page and ">set<" in page.replace("\n", "")
    response = client.post(
        url,
        {
            "base_url": finale.base_url,
            "account": finale.account,
            "api_key": finale.api_key,
            "new_api_secret": finale.api_secret,
        },
        follow=True,
    )
    assert response.status_code == 200
    stored = FinaleConnection.objects.get()
    assert stored.api_secret == finale.api_secret
    assert finale.api_secret not in raw_column("finalesync_finaleconnection", "api_secret", 1)
    assert not DataTypeConfig.objects.get(data_type="vendors").needs_attention
    assert finale.api_secret not in response.content.decode()
    entry = AuditLog.objects.get(action="change_credentials")
    assert finale.api_secret not in entry.message and "api_secret" in entry.message
    assert sync_data_type(data_type="vendors").outcome == "success"


def test_saving_without_a_new_secret_keeps_it(client, superuser):
    FinaleConnection.objects.create(pk=1, account="acme", api_key="k", api_secret="keep-me-123")
    # (Changing the account now needs the key and secret again: tests/test_security_admin.py.)
    client.post(change(FinaleConnection.objects.get()), {"account": "acme", "new_api_key": "k2"})
    stored = FinaleConnection.objects.get()
    assert (stored.account, stored.api_key, stored.api_secret) == ("acme", "k2", "keep-me-123")


def test_environment_wins_and_the_admin_says_so(client, superuser, settings):
    settings.FINALE_API_SECRET = "from-env-secret-77"
    settings.FINALE_REPORT_URLS = {"inventory": "https://env.example/report.csv", "vendors": "", "boms": ""}
    FinaleConnection.objects.create(pk=1, account="acme")
    page = client.get(change(FinaleConnection.objects.get())).content.decode()
    assert "FINALE_API_SECRET" in page and "the environment wins" in page
    assert "from-env-secret-77" not in page
    ensure_configs()
    inventory = DataTypeConfig.objects.get(data_type="inventory")
    page = client.get(change(inventory)).content.decode()
    assert "FINALE_REPORT_URL_INVENTORY" in page and "the environment wins" in page
    assert "env.example" not in page


def test_report_url_is_write_only_and_stored_encrypted(client, superuser):
    ensure_configs()
    config = DataTypeConfig.objects.get(data_type="boms")
    secret_url = "https://app.example/acct/report/9?token=tok-SECRET-55"
    form = {
        "enabled": "on",
        "interval_minutes": 60,
        "max_drop_ratio": 0.5,
        "max_change_ratio": 0.75,
        "max_emptied_ratio": 0.5,
        "history_keep_syncs": 10,
        "history_keep_days": 7,
        "new_report_url": secret_url,
    }
    response = client.post(change(config), form, follow=True)
    assert response.status_code == 200
    config.refresh_from_db()
    assert config.report_url == secret_url
    assert "tok-SECRET-55" not in raw_column("finalesync_datatypeconfig", "report_url", config.pk)
    page = client.get(change(config)).content.decode()
    assert "tok-SECRET-55" not in page and "app.example" not in page
    assert ">set<" in page.replace("\n", "")
    assert AuditLog.objects.filter(action="change_credentials", data_type="boms").exists()
