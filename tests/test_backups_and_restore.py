"""Backups before syncs (never the same content twice in a row), restore with undo, retention."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from finalesync.datatypes import registry
from finalesync.sync import sync_data_type
from retries.backups import content_checksum, prune_backups
from retries.models import Backup
from retries.restore import restore_backup


def rows(data_type):
    return list(registry.get(data_type).model.objects.order_by("natural_key").values())


@pytest.mark.django_db
def test_unchanged_resyncs_store_no_new_backup_and_changes_keep_the_new_state(finale):
    sync_data_type(data_type="vendors", force=True)
    assert Backup.objects.count() == 1  # the state this sync left (nothing to back up before it)
    sync_data_type(data_type="vendors", force=True)
    sync_data_type(data_type="vendors", force=True)
    assert Backup.objects.count() == 1
    finale.mutate("vendors", ratio=0.3)
    result = sync_data_type(data_type="vendors", force=True)
    assert result.updated > 0 and result.backup_id == Backup.objects.order_by("created_at").first().pk
    latest = Backup.objects.order_by("-created_at", "-id").first()
    assert (latest.reason, latest.is_good) == ("post_sync", True)
    assert (latest.row_count, latest.checksum) == content_checksum(registry.get("vendors"))


@pytest.mark.django_db
@pytest.mark.parametrize("data_type", ["inventory", "vendors", "boms", "purchase_orders"])
def test_restore_returns_rows_exactly_and_can_be_undone(finale, data_type):
    sync_data_type(data_type=data_type, force=True)
    original = rows(data_type)
    first_backup = Backup.objects.get(data_type=data_type)
    finale.mutate(data_type, ratio=0.4)
    sync_data_type(data_type=data_type, force=True)
    changed = rows(data_type)
    assert changed != original

    run = restore_backup(backup_id=first_backup.pk, user="ops", reason="test")
    assert run.outcome == "success" and run.triggered_by == "ops"
    assert _same(rows(data_type), original)
    undo = restore_backup(backup_id=run.details["undo_backup"], user="ops")
    assert undo.outcome == "success"
    assert _same(rows(data_type), changed)


def _same(a, b):
    drop = lambda rs: [{k: v for k, v in r.items() if k != "id"} for r in rs]  # noqa: E731
    return drop(a) == drop(b)


@pytest.mark.django_db
def test_restorebackup_command_reports_and_rejects_unknown_ids(finale, capsys):
    sync_data_type(data_type="boms", force=True)
    backup = Backup.objects.get()
    registry.get("boms").model.objects.all().delete()
    call_command("restorebackup", str(backup.pk))
    assert f"Restored boms to backup #{backup.pk}" in capsys.readouterr().out
    assert registry.get("boms").model.objects.count() == backup.row_count
    with pytest.raises(CommandError, match="no backup #999999"):
        call_command("restorebackup", "999999")


@pytest.mark.django_db
def test_retention_keeps_latest_good_backups_and_recent_ones():
    now = timezone.now()
    old = [
        Backup.objects.create(
            data_type="inventory", row_count=1, checksum=str(i), created_at=now - timedelta(days=30 - i)
        )
        for i in range(15)
    ]
    recent = Backup.objects.create(
        data_type="inventory", row_count=1, checksum="r", created_at=now - timedelta(days=1)
    )
    other = Backup.objects.create(
        data_type="vendors", row_count=1, checksum="v", created_at=now - timedelta(days=90)
    )
    removed = prune_backups(data_type="inventory", keep_count=10, keep_days=7, now=now)
    kept = set(Backup.objects.values_list("pk", flat=True))
    # newest 10 good = recent + the 9 newest old ones; the 6 oldest old ones go
    assert removed == 6
    assert kept == {recent.pk, other.pk, *[b.pk for b in old[6:]]}


@pytest.mark.django_db
def test_backups_of_many_chunks_are_written_and_restored(finale, monkeypatch):
    """Regression: on PostgreSQL, writing or reading chunks during the COPY deadlocked on the connection."""
    import retries.backups

    monkeypatch.setattr(retries.backups, "CHUNK_BYTES", 1024)
    assert sync_data_type(data_type="inventory", force=True).outcome == "success"
    backup = Backup.objects.get(data_type="inventory")
    assert backup.chunks.count() > 3
    before = rows("inventory")
    registry.get("inventory").model.objects.all().delete()
    finale.set_fault("inventory", "empty")
    result = sync_data_type(data_type="inventory")
    assert (result.outcome, result.restored_backup_id) == ("rolled_back", backup.pk)
    assert _same(rows("inventory"), before)
    finale.clear_faults()
    finale.mutate("inventory", ratio=0.5)
    assert sync_data_type(data_type="inventory", force=True).updated > 0
    assert restore_backup(backup_id=backup.pk, user="ops").outcome == "success"
    assert _same(rows("inventory"), before)


@pytest.mark.django_db
def test_failed_automatic_restore_is_queued_as_a_critical_restore_retry(finale, monkeypatch):
    from retries import restore
    from retries.models import RetryItem
    from retries.queue import process_retries

    sync_data_type(data_type="vendors", force=True)
    before = rows("vendors")
    registry.get("vendors").model.objects.all().delete()
    finale.set_fault("vendors", "empty")
    real_apply = restore.apply_backup
    monkeypatch.setattr(
        restore, "apply_backup", lambda **kw: (_ for _ in ()).throw(RuntimeError("lock timeout"))
    )
    result = sync_data_type(data_type="vendors")
    assert result.outcome == "rolled_back"
    item = RetryItem.objects.get(operation="restore")
    assert (item.data_type, item.priority, item.status) == ("vendors", 4, "pending")
    monkeypatch.setattr(restore, "apply_backup", real_apply)
    RetryItem.objects.filter(pk=item.pk).update(next_retry_at=timezone.now())
    [done] = process_retries().processed
    assert (done["operation"], done["status"]) == ("restore", "completed")
    assert _same(rows("vendors"), before)


@pytest.mark.django_db
def test_good_state_is_known_even_if_the_worker_died_right_after_committing(finale):
    from finalesync.models import SyncRun
    from finalesync.sync import last_good_checksum

    assert sync_data_type(data_type="boms", force=True).outcome == "success"
    finale.mutate("boms", ratio=0.3)
    result = sync_data_type(data_type="boms", force=True)
    # as if the process died between the apply's commit and saving the run
    SyncRun.objects.filter(pk=result.run_id).update(outcome="running", finished_at=None)
    assert last_good_checksum("boms") == content_checksum(registry.get("boms"))[1]
