"""Row history: every sync that changes rows records them (and nothing else), restore to any kept point with
undo, automatic repair of damaged live rows, retention, and what each sync changed."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from finalesync import history
from finalesync.datatypes import registry
from finalesync.models import DataTypeConfig, SyncRun
from finalesync.restore import restore
from finalesync.sync import sync_data_type

ALL_TYPES = ["inventory", "vendors", "boms", "purchase_orders"]


def rows(data_type):
    return list(registry.get(data_type).model.objects.order_by("natural_key").values())


def versions(data_type):
    return registry.get(data_type).model.Versions.objects


def _same(a, b):
    # A restore clears the line digest of the rows it puts back (the next sync reads their lines again).
    drop = lambda rs: [{k: v for k, v in r.items() if k not in ("id", "line_digest")} for r in rs]  # noqa: E731
    return drop(a) == drop(b)


def seq_of(result):
    return SyncRun.objects.get(pk=result.run_id).history_seq


@pytest.mark.django_db
def test_unchanged_resyncs_write_no_history_and_changes_write_only_what_changed(finale):
    first = sync_data_type(data_type="vendors", force=True)
    count = versions("vendors").count()
    assert count == first.created == len(rows("vendors"))  # the first sync is the base
    sync_data_type(data_type="vendors", force=True)
    sync_data_type(data_type="vendors", force=True)
    assert versions("vendors").count() == count
    finale.mutate("vendors", ratio=0.3)
    result = sync_data_type(data_type="vendors", force=True)
    assert result.updated > 0
    assert versions("vendors").count() == count + result.updated
    assert set(versions("vendors").filter(seq=seq_of(result)).values_list("natural_key", flat=True)) == {
        r["natural_key"] for r in rows("vendors") if r["updated_at"] > r["created_at"]
    }


@pytest.mark.django_db
@pytest.mark.parametrize("data_type", ALL_TYPES)
def test_restore_returns_rows_exactly_and_can_be_undone(finale, data_type):
    first = sync_data_type(data_type=data_type, force=True)
    original = rows(data_type)
    finale.mutate(data_type, ratio=0.4)
    sync_data_type(data_type=data_type, force=True)
    changed = rows(data_type)
    assert changed != original

    done = restore(data_type=data_type, seq=seq_of(first), user="ops", reason="test")
    assert done.outcome == "success" and SyncRun.objects.get(pk=done.run_id).triggered_by == "ops"
    assert _same(rows(data_type), original)
    undo = restore(data_type=data_type, seq=done.details["undo_seq"], user="ops")
    assert undo.outcome == "success"
    assert _same(rows(data_type), changed)


@pytest.mark.django_db
def test_restore_to_each_of_several_points_reproduces_that_point(finale):
    points = []
    for step in range(4):
        if step:
            finale.mutate("inventory", ratio=0.1)
        result = sync_data_type(data_type="inventory", force=True)
        assert result.outcome == "success"
        points.append((seq_of(result), rows("inventory")))
    for seq, expected in [points[1], points[0], points[3], points[2]]:
        assert restore(data_type="inventory", seq=seq, user="ops").outcome == "success"
        assert _same(rows("inventory"), expected)


@pytest.mark.django_db
def test_restorebackup_command_lists_points_restores_and_refuses_what_it_must(finale, capsys):
    first = sync_data_type(data_type="boms", force=True)
    call_command("restorebackup", "--list", "boms")
    listed = capsys.readouterr().out
    assert f"run #{first.run_id}" in listed
    run = SyncRun.objects.get(pk=first.run_id)
    assert f" {run.get_trigger_display()} " in listed  # the trigger as people write it ("CLI", not "cli")
    registry.get("boms").model.objects.all().delete()
    with pytest.raises(CommandError, match="say why"):
        call_command("restorebackup", str(first.run_id), "--yes")
    call_command("restorebackup", str(first.run_id), "--yes", "--reason", "emptied by hand")
    out = capsys.readouterr().out
    assert "Restored boms" in out and "next scheduled sync" in out
    assert registry.get("boms").model.objects.count() == first.item_count
    with pytest.raises(CommandError, match="nothing would change"):
        call_command("restorebackup", str(first.run_id), "--yes", "--reason", "again")
    with pytest.raises(CommandError, match="no sync run #999999"):
        call_command("restorebackup", "999999", "--yes", "--reason", "x")


@pytest.mark.django_db
def test_refused_data_restores_rows_someone_deleted_by_hand(finale):
    assert sync_data_type(data_type="inventory", force=True).outcome == "success"
    before = rows("inventory")
    registry.get("inventory").model.objects.all().delete()
    finale.set_fault("inventory", "empty")
    result = sync_data_type(data_type="inventory")
    assert (result.outcome, result.recovery_attempted, result.recovery_succeeded) == (
        "rolled_back",
        True,
        True,
    )
    assert result.restored_seq == 1
    assert _same(rows("inventory"), before)
    finale.clear_faults()
    finale.mutate("inventory", ratio=0.1)
    assert sync_data_type(data_type="inventory", force=True).updated > 0
    assert restore(data_type="inventory", seq=1, user="ops").outcome == "success"
    assert _same(rows("inventory"), before)


@pytest.mark.django_db
def test_failed_automatic_restore_is_queued_as_a_critical_restore_retry(finale, monkeypatch):
    from retries.models import RetryItem
    from retries.queue import process_retries

    sync_data_type(data_type="vendors", force=True)
    before = rows("vendors")
    registry.get("vendors").model.objects.all().delete()
    finale.set_fault("vendors", "empty")
    real_apply = history.apply_state
    monkeypatch.setattr(
        history, "apply_state", lambda *a, **kw: (_ for _ in ()).throw(RuntimeError("lock timeout"))
    )
    result = sync_data_type(data_type="vendors")
    assert result.outcome == "rolled_back" and result.restore_failed
    item = RetryItem.objects.get(operation="restore")
    assert (item.data_type, item.priority, item.status) == ("vendors", 4, "pending")
    monkeypatch.setattr(history, "apply_state", real_apply)
    RetryItem.objects.filter(pk=item.pk).update(next_retry_at=timezone.now())
    [done] = process_retries().processed
    assert (done["operation"], done["status"]) == ("restore", "completed")
    assert _same(rows("vendors"), before)


@pytest.mark.django_db
def test_good_state_is_known_even_if_the_worker_died_right_after_committing(finale):
    assert sync_data_type(data_type="boms", force=True).outcome == "success"
    finale.mutate("boms", ratio=0.3)
    result = sync_data_type(data_type="boms", force=True)
    # as if the process died between the apply's commit and saving the run
    SyncRun.objects.filter(pk=result.run_id).update(outcome="running", finished_at=None)
    config = DataTypeConfig.objects.get(data_type="boms")
    assert SyncRun.objects.get(pk=result.run_id).history_seq == config.history_seq == 2
    assert not history.live_differs(registry.get("boms"), seq=config.history_seq)
    # the next run of the type closes the dead run as failed
    sync_data_type(data_type="boms", force=True)
    assert SyncRun.objects.get(pk=result.run_id).outcome == "failed"


@pytest.mark.django_db
def test_what_changed_lists_exactly_the_rows_the_simulator_changed(finale):
    sync_data_type(data_type="inventory", force=True)
    finale.mutate("inventory", ratio=0.05)
    result = sync_data_type(data_type="inventory", force=True)
    changed, total = history.changes("inventory", seq=seq_of(result), limit=None)
    expected = {f"SKU-{i:06d}" for i in finale.changed_rows("inventory")}
    assert {c.key for c in changed} == expected and total == len(expected) == result.updated
    change = changed[0]
    assert change.kind == "updated" and "on_hand" in change.changed
    assert change.before["on_hand"] != change.after["on_hand"]
    assert set(change.changed) <= set(change.before)


@pytest.mark.django_db
def test_syncchanges_json_and_key_history(finale, capsys):
    import json

    sync_data_type(data_type="vendors", force=True)
    finale.mutate("vendors", ratio=0.2)
    result = sync_data_type(data_type="vendors", force=True)
    call_command("syncchanges", str(result.run_id), "--json")
    data = json.loads(capsys.readouterr().out)
    assert data["updated"] == result.updated == len(data["changes"])
    key = data["changes"][0]["key"]
    assert all(len(v) == 2 for v in data["changes"][0]["changes"].values())
    call_command("syncchanges", "--history", "vendors", key, "--json")
    versions_of_key = json.loads(capsys.readouterr().out)
    assert [v["kind"] for v in versions_of_key] == ["updated", "created"]
    assert versions_of_key[0]["run"] == result.run_id


@pytest.mark.django_db
def test_retention_keeps_recent_and_latest_points_and_the_latest_state_whole(finale):
    config = DataTypeConfig.objects.get_or_create(data_type="inventory", defaults={"interval_minutes": 5})[0]
    DataTypeConfig.objects.filter(pk=config.pk).update(history_keep_syncs=2, history_keep_days=1)
    seqs = []
    for step in range(5):
        if step:
            finale.mutate("inventory", ratio=0.2)
        seqs.append(seq_of(sync_data_type(data_type="inventory", force=True)))
    latest = rows("inventory")
    # the first three syncs happened "long ago"
    SyncRun.objects.filter(history_seq__lte=seqs[2]).update(started_at=timezone.now() - timedelta(days=3))
    removed = history.prune("inventory", now=timezone.now(), batch=50)
    assert removed > 0
    config.refresh_from_db()
    assert config.history_floor == seqs[3]
    assert [p.history_seq for p in history.restore_points("inventory")] == [seqs[4], seqs[3]]
    with pytest.raises(Exception, match="cannot be restored"):
        from finalesync.actions import restore_point

        restore_point(SyncRun.objects.get(history_seq=seqs[1], data_type="inventory").pk)
    # the oldest kept point and the latest state both still come back whole
    registry.get("inventory").model.objects.all().delete()
    assert restore(data_type="inventory", seq=seqs[4], user="ops").outcome == "success"
    assert _same(rows("inventory"), latest)
    assert restore(data_type="inventory", seq=seqs[3], user="ops").outcome == "success"
    assert history.prune("inventory", now=timezone.now(), protect={seqs[3]}) == 0


@pytest.mark.django_db
def test_cleanup_never_prunes_what_a_queued_restore_needs(finale):
    from retries.cleanup import run_cleanup

    DataTypeConfig.objects.update_or_create(
        data_type="vendors", defaults={"history_keep_syncs": 1, "history_keep_days": 1}
    )
    first = sync_data_type(data_type="vendors", force=True)
    finale.mutate("vendors", ratio=0.3)
    sync_data_type(data_type="vendors", force=True)
    SyncRun.objects.filter(pk=first.run_id).update(started_at=timezone.now() - timedelta(days=3))
    SyncRun.objects.create(
        data_type="vendors",
        trigger="restore",
        outcome="queued",
        restore_seq=seq_of(first),
        triggered_by="ops",
    )
    run_cleanup()
    assert DataTypeConfig.objects.get(data_type="vendors").history_floor <= seq_of(first)
    registry.get("vendors").model.objects.all().delete()
    assert restore(data_type="vendors", seq=seq_of(first), user="ops").outcome == "success"
    assert len(rows("vendors")) == first.item_count
