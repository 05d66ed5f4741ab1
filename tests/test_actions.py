"""Manual actions (finalesync/actions.py): each does its work through the engine's functions and leaves an
audit entry with who, what, the outcome and the reason, also when it is refused."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import OrmQ

from finalesync import actions
from finalesync.actions import ActionRefused, Actor
from finalesync.models import AuditLog, DataTypeConfig, FinaleConnection, SyncRun
from finalesync.sync import ensure_configs, sync_data_type
from retries.models import Backup, RetryItem
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
        actions.retry_now(item_id=item.pk, actor=actor)
    item.refresh_from_db()
    assert item.status == "pending" and item.next_retry_at <= timezone.now()
    assert queued_tasks() == [("finalesync.tasks.process_retries", ())]
    assert only_entry() == ("retry_now", f"retry #{item.pk} (sync vendors)", "success")


def test_retry_now_on_a_failed_item_requeues_it_with_a_fresh_budget(actor):
    item = enqueue_retry(data_type="boms", error="HTTP 503", error_code="server_error")
    RetryItem.objects.filter(pk=item.pk).update(status="failed", retry_count=3, resolution="gave up")
    actions.retry_now(item_id=item.pk, actor=actor)
    item.refresh_from_db()
    assert (item.status, item.retry_count) == ("pending", 0)
    assert item.resolution == "requeued by alice"


def test_retry_actions_refuse_the_wrong_state_and_say_so(actor):
    item = enqueue_retry(data_type="boms", error="x")
    with pytest.raises(ActionRefused, match="still pending"):
        actions.requeue_retry(item_id=item.pk, actor=actor)
    actions.cancel_retry(item_id=item.pk, actor=actor)
    item.refresh_from_db()
    assert item.status == "cancelled"
    with pytest.raises(ActionRefused, match="only pending"):
        actions.cancel_retry(item_id=item.pk, actor=actor)
    with pytest.raises(ActionRefused, match="no retry #999"):
        actions.retry_now(item_id=999, actor=actor)
    actions.requeue_retry(item_id=item.pk, actor=actor)
    assert RetryItem.objects.get(pk=item.pk).status == "pending"
    assert list(AuditLog.objects.order_by("id").values_list("action", "outcome")) == [
        ("requeue_retry", "refused"),
        ("cancel_retry", "success"),
        ("cancel_retry", "refused"),
        ("retry_now", "refused"),
        ("requeue_retry", "success"),
    ]


def test_restore_backup_action_restores_and_records_the_undo(actor, finale):
    sync_data_type(data_type="boms", force=True)
    first = Backup.objects.get(data_type="boms")
    finale.mutate("boms", ratio=0.5)
    sync_data_type(data_type="boms", force=True)
    preview = actions.preview_restore(backup_id=first.pk)
    assert preview.would_update > 0 and preview.would_create == preview.would_delete == 0
    assert preview.live_rows == first.row_count and preview.examples["update"]

    message = actions.restore_backup(backup_id=first.pk, actor=actor, reason="bad publish")
    assert f"backup #{first.pk}" in message
    assert actions.preview_restore(backup_id=first.pk).changes == 0
    entry = AuditLog.objects.get()
    assert (entry.action, entry.outcome, entry.data_type, entry.reason) == (
        "restore_backup",
        "success",
        "boms",
        "bad publish",
    )
    with pytest.raises(ActionRefused, match="no backup #424242"):
        actions.restore_backup(backup_id=424242, actor=actor)


def test_preview_counts_added_and_removed_keys(actor, finale):
    sync_data_type(data_type="vendors", force=True)
    backup = Backup.objects.get(data_type="vendors")
    model = backup_model = __import__("finalesync.datatypes.registry", fromlist=["get"]).get("vendors").model
    victims = list(model.objects.order_by("natural_key").values_list("pk", flat=True)[:3])
    model.objects.filter(pk__in=victims).delete()
    extra = backup_model.objects.first()
    extra.pk = None
    extra.natural_key = "zzz-not-in-the-backup"
    extra.save()
    preview = actions.preview_restore(backup_id=backup.pk)
    assert (preview.would_create, preview.would_delete, preview.would_update) == (3, 1, 0)
    assert preview.examples["delete"] == ["zzz-not-in-the-backup"]


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
    actions.record(
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
    backup = Backup.objects.get(data_type="vendors")
    call_command("restorebackup", str(backup.pk), "--user", "carol", "--reason", "drill")
    out = capsys.readouterr().out
    assert "Restored vendors" in out and "To undo: python manage.py restorebackup" in out
    restore = AuditLog.objects.get(action="restore_backup")
    assert (restore.username, restore.reason, restore.outcome) == ("carol", "drill", "success")
