"""Manual actions (finalesync/actions.py, retries/actions.py): each does its work through the engine's
functions and leaves an audit entry with who, what, the outcome and the reason, also when it is refused."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import OrmQ

from finalesync import actions, audit
from finalesync.audit import ActionRefused, Actor
from finalesync.datatypes import registry
from finalesync.models import AuditLog, DataTypeConfig, FinaleConnection, SyncRun
from finalesync.sync import ensure_configs, sync_data_type
from retries import actions as retry_actions
from retries.models import RetryItem
from retries.queue import enqueue_retry

from .opsdata import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def actor():
    return Actor.for_user(make_user("alice", superuser=True), AuditLog.Source.DASHBOARD)


def queued_tasks():
    return [(q.task["func"], q.task["args"]) for q in OrmQ.objects.all()]


def only_entry():
    entry = AuditLog.objects.get()
    return entry.action, entry.target, entry.outcome


def test_sync_now_queues_a_django_q_task_and_never_syncs_in_the_request(actor, finale):
    message = actions.sync_now(data_type="inventory", actor=actor, reason="checking")
    assert "queued" in message
    assert queued_tasks() == [("finalesync.tasks.sync_type", ("inventory", "manual", False, "alice"))]
    assert not SyncRun.objects.exists()
    entry = AuditLog.objects.get()
    assert (entry.action, entry.outcome, entry.reason, entry.username) == (
        "sync_now",
        "queued",
        "checking",
        "alice",
    )


def test_the_queued_manual_sync_runs_as_the_user(actor, finale, monkeypatch):
    monkeypatch.setattr(Conf, "SYNC", True)
    actions.sync_now(data_type="vendors", actor=actor, force=True)
    run = SyncRun.objects.get()
    assert (run.data_type, run.trigger, run.triggered_by, run.forced, run.outcome) == (
        "vendors",
        "manual",
        "alice",
        True,
        "success",
    )


def test_unknown_type_is_refused_and_audited(actor):
    with pytest.raises(ActionRefused, match="unknown data type"):
        actions.sync_now(data_type="widgets", actor=actor)
    with pytest.raises(ActionRefused, match="unknown data type"):
        actions.pause(data_type="widgets", actor=actor)
    assert list(AuditLog.objects.values_list("outcome", flat=True)) == ["refused", "refused"]
    assert not OrmQ.objects.exists()


def test_pause_then_resume_clears_pause_snooze_and_needs_attention(actor):
    ensure_configs()
    actions.pause(data_type="boms", actor=actor)
    assert DataTypeConfig.objects.get(data_type="boms").paused
    DataTypeConfig.objects.filter(data_type="boms").update(
        needs_attention=True, attention_reason="401", snoozed_until=timezone.now() + timedelta(hours=1)
    )
    message = actions.resume(data_type="boms", actor=actor)
    assert "paused" in message and "waiting for a person" in message
    config = DataTypeConfig.objects.get(data_type="boms")
    assert (config.paused, config.snoozed_until, config.needs_attention) == (False, None, False)
    assert list(AuditLog.objects.order_by("id").values_list("action", "outcome")) == [
        ("pause", "success"),
        ("resume", "success"),
    ]


def test_snooze_sets_the_time_and_rejects_silly_lengths(actor):
    now = timezone.now()
    actions.snooze(data_type="vendors", actor=actor, hours=24, now=now)
    assert DataTypeConfig.objects.get(data_type="vendors").snoozed_until == now + timedelta(hours=24)
    with pytest.raises(ActionRefused):
        actions.snooze(data_type="vendors", actor=actor, hours=0)
    assert list(AuditLog.objects.order_by("id").values_list("target", "outcome")) == [
        ("vendors for 24 h", "success"),
        ("vendors for 0 h", "refused"),
    ]


def test_retry_now_makes_a_pending_item_due_and_starts_the_processor(
    actor, django_capture_on_commit_callbacks
):
    item = enqueue_retry(data_type="vendors", error="HTTP 503", error_code="server_error")
    assert item.next_retry_at > timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        retry_actions.retry_now(item_id=item.pk, actor=actor)
    item.refresh_from_db()
    assert item.status == "pending" and item.next_retry_at <= timezone.now()
    assert queued_tasks() == [("retries.tasks.process_retries", ())]
    assert only_entry() == ("retry_now", f"retry #{item.pk} (sync vendors)", "success")


def test_retry_now_on_a_failed_item_requeues_it_with_a_fresh_budget(actor):
    item = enqueue_retry(data_type="boms", error="HTTP 503", error_code="server_error")
    RetryItem.objects.filter(pk=item.pk).update(status="failed", retry_count=3, resolution="gave up")
    retry_actions.retry_now(item_id=item.pk, actor=actor)
    item.refresh_from_db()
    assert (item.status, item.retry_count) == ("pending", 0)
    assert item.resolution == "requeued by alice"


def test_retry_actions_refuse_the_wrong_state_and_say_so(actor):
    item = enqueue_retry(data_type="boms", error="x")
    with pytest.raises(ActionRefused, match="still pending"):
        retry_actions.requeue_retry(item_id=item.pk, actor=actor)
    retry_actions.cancel_retry(item_id=item.pk, actor=actor)
    item.refresh_from_db()
    assert item.status == "cancelled"
    with pytest.raises(ActionRefused, match="only pending"):
        retry_actions.cancel_retry(item_id=item.pk, actor=actor)
    with pytest.raises(ActionRefused, match="no retry #999"):
        retry_actions.retry_now(item_id=999, actor=actor)
    retry_actions.requeue_retry(item_id=item.pk, actor=actor)
    assert RetryItem.objects.get(pk=item.pk).status == "pending"
    assert list(AuditLog.objects.order_by("id").values_list("action", "outcome")) == [
        ("requeue_retry", "refused"),
        ("cancel_retry", "success"),
        ("cancel_retry", "refused"),
        ("retry_now", "refused"),
        ("requeue_retry", "success"),
    ]


def test_restore_is_queued_as_a_task_after_a_preview_and_records_who_and_why(
    actor, finale, django_capture_on_commit_callbacks, monkeypatch
):
    first = sync_data_type(data_type="boms", force=True)
    before = list(registry.get("boms").model.objects.order_by("natural_key").values())
    finale.mutate("boms", ratio=0.5)
    sync_data_type(data_type="boms", force=True)
    preview = actions.preview_restore(run_id=first.run_id)
    assert preview.would_update > 0 and preview.would_create == preview.would_delete == 0
    assert preview.live_rows == first.item_count and preview.examples["update"]
    with pytest.raises(ActionRefused, match="say why"):
        actions.queue_restore(run_id=first.run_id, actor=actor)

    with django_capture_on_commit_callbacks(execute=True):
        message = actions.queue_restore(
            run_id=first.run_id, actor=actor, reason="bad publish", pause_type=True
        )
    assert f"run #{first.run_id}" in message and "paused" in message
    [(func, (run_id,))] = queued_tasks()
    assert func == "finalesync.tasks.restore_type"
    queued = SyncRun.objects.get(pk=run_id)
    assert (queued.trigger, queued.outcome, queued.triggered_by) == ("restore", "queued", "alice")
    assert DataTypeConfig.objects.get(data_type="boms").paused
    assert AuditLog.objects.filter(outcome="refused", message__contains="say why").exists()
    entry = AuditLog.objects.get(outcome="queued")
    assert (entry.action, entry.outcome, entry.data_type, entry.reason) == (
        "restore_backup",
        "queued",
        "boms",
        "bad publish",
    )
    # the worker picks the task up
    from finalesync.tasks import restore_type

    assert restore_type(run_id)["outcome"] == "success"
    after = list(registry.get("boms").model.objects.order_by("natural_key").values())
    assert [{k: v for k, v in r.items() if k != "id"} for r in after] == [
        {k: v for k, v in r.items() if k != "id"} for r in before
    ]
    with pytest.raises(ActionRefused, match="nothing would change"):
        actions.queue_restore(run_id=first.run_id, actor=actor, reason="again")
    with pytest.raises(ActionRefused, match="no sync run #424242"):
        actions.queue_restore(run_id=424242, actor=actor, reason="x")


def test_preview_counts_added_and_removed_keys(actor, finale):
    first = sync_data_type(data_type="vendors", force=True)
    model = registry.get("vendors").model
    victims = list(model.objects.order_by("natural_key").values_list("pk", flat=True)[:3])
    model.objects.filter(pk__in=victims).delete()
    extra = model.objects.first()
    extra.pk = None
    extra.natural_key = "zzz-not-in-the-history"
    extra.save()
    preview = actions.preview_restore(run_id=first.run_id)
    assert (preview.would_create, preview.would_delete, preview.would_update) == (3, 1, 0)
    assert preview.examples["delete"] == ["zzz-not-in-the-history"]


def test_new_credentials_lift_needs_attention_only_for_auth_failures(actor, finale):
    for name in ("inventory", "vendors", "boms"):
        sync_data_type(data_type=name, force=True)
    finale.set_fault("inventory", "http_401")
    finale.set_fault("vendors", "html")
    finale.set_fault("boms", "missing_column")
    for name in ("inventory", "vendors", "boms"):
        assert sync_data_type(data_type=name).outcome == "failed"
    assert set(DataTypeConfig.objects.filter(needs_attention=True).values_list("data_type", flat=True)) == {
        "inventory",
        "vendors",
        "boms",
    }
    message = actions.credentials_changed(actor=actor, changed=["api_secret"])
    assert "inventory, vendors" in message
    assert list(DataTypeConfig.objects.filter(needs_attention=True).values_list("data_type", flat=True)) == [
        "boms"
    ]
    assert FinaleConnection.objects.get(pk=1).credentials_changed_at is not None
    assert only_entry() == ("change_credentials", "Finale connection", "success")


def test_audit_entries_never_hold_a_secret(actor):
    from finalesync.redact import register_secret

    register_secret("s3cr3t-value-123")
    audit.record(
        actor=actor,
        action="pause",
        target="inventory",
        outcome="success",
        message="token s3cr3t-value-123 leaked?",
        reason="https://u:pw@host/x",
    )
    entry = AuditLog.objects.get()
    assert "s3cr3t-value-123" not in entry.message and ":pw@" not in entry.reason


def test_command_actor_links_an_existing_account():
    user = make_user("bob")
    assert Actor.named("bob").user == user
    assert Actor.named("cron-job").user is None


def test_synchealth_command_is_not_an_action(capsys):
    with pytest.raises(SystemExit):
        call_command("synchealth")
    assert not AuditLog.objects.exists()


def test_commands_run_by_a_person_are_audited(finale, capsys):
    make_user("carol")
    call_command("runsync", "vendors", "--force", "--json", "--user", "carol")
    entry = AuditLog.objects.get()
    assert (entry.username, entry.source, entry.action, entry.target, entry.outcome) == (
        "carol",
        "cli",
        "sync_now",
        "vendors (forced)",
        "success",
    )
    assert entry.user is not None
    first = SyncRun.objects.get(data_type="vendors")
    finale.mutate("vendors", ratio=0.3)
    sync_data_type(data_type="vendors", force=True)
    call_command("restorebackup", str(first.pk), "--user", "carol", "--reason", "drill", "--yes")
    out = capsys.readouterr().out
    assert "Restored vendors" in out and "To undo: python manage.py restorebackup" in out
    restore = AuditLog.objects.get(action="restore_backup")
    assert (restore.username, restore.reason, restore.outcome) == ("carol", "drill", "success")
