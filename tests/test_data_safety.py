"""Issue 8, case by case, end to end through the simulator on loopback: no forced run, edited report,
cut-short transfer, odd cell or huge line may destroy or freeze good data."""

import contextlib
import io
import json
import os
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.db import DataError
from django.db import connection as db

from finalesync import staging
from finalesync.datatypes import registry
from finalesync.models import DataTypeConfig, SyncRun
from finalesync.safety import Confirmation
from finalesync.sync import sync_data_type
from retries.models import FailureLog

from .conftest import ROOT, BodyClient, finale_env

pytestmark = pytest.mark.django_db


def snapshot(data_type):
    return list(registry.get(data_type).model.objects.order_by("natural_key").values())


def history_rows(data_type):
    return registry.get(data_type).model.Versions.objects.count()


def runsync_json(*args) -> dict:
    out = io.StringIO()
    with contextlib.suppress(SystemExit):
        call_command("runsync", *args, "--json", stdout=out)
    return json.loads(out.getvalue().splitlines()[-1])


@pytest.fixture
def synced(finale):
    """Every type synced once; returns the simulator."""
    for name in registry.NAMES:
        assert sync_data_type(data_type=name, force=True).outcome == "success", name
    return finale


def test_a_forced_run_refuses_a_suspicious_drop_and_keeps_every_row(synced):
    before, versions = snapshot("inventory"), history_rows("inventory")
    synced.set_fault("inventory", "drop_60")
    result = runsync_json("inventory", "--force")
    assert (result["outcome"], result["recoverable"]) == ("rolled_back", False)
    assert "drop from" in result["error"] and "--confirm" in result["advice"]
    assert snapshot("inventory") == before and history_rows("inventory") == versions
    run = SyncRun.objects.filter(data_type="inventory").latest("started_at")
    evidence = run.details["evidence"]
    assert evidence["deleted"] > len(before) / 2 and evidence["samples"]["deleted"]
    assert FailureLog.objects.get(data_type="inventory").error_details["evidence"]["live_rows"] == len(before)


def test_confirm_applies_a_suspicious_drop_once_and_is_audited(synced):
    synced.set_fault("inventory", "drop_60")
    result = runsync_json("inventory", "--confirm", "--user", "ops")
    assert result["outcome"] == "success" and result["deleted"] > 0
    run = SyncRun.objects.filter(data_type="inventory").latest("started_at")
    assert run.confirmed and run.details["confirmed_by"] == "ops"
    from finalesync.models import AuditLog

    entry = AuditLog.objects.get(action="confirm_sync")
    assert (entry.username, entry.outcome) == ("ops", "success")
    # one run only: the next one checks again (no drop now, nothing to refuse)
    assert sync_data_type(data_type="inventory", force=True).outcome == "success"


def test_a_review_page_confirmation_accepts_at_most_what_was_shown(synced):
    model = registry.get("inventory").model
    synced.set_fault("inventory", "drop_60")
    refused = sync_data_type(data_type="inventory")
    evidence = SyncRun.objects.get(pk=refused.run_id).details["evidence"]
    shown_less = Confirmation(
        by="ops", max_deleted=evidence["deleted"] // 2, max_updated=0, emptied=frozenset()
    )
    again = sync_data_type(data_type="inventory", force=True, confirm=shown_less)
    assert again.outcome == "rolled_back" and model.objects.count() == evidence["live_rows"]
    exact = Confirmation.from_evidence(evidence, by="ops")
    assert sync_data_type(data_type="inventory", force=True, confirm=exact).outcome == "success"
    assert model.objects.count() == evidence["new_rows"]


def test_a_renamed_stock_column_is_a_schema_error_and_changes_nothing(synced):
    before = snapshot("inventory")
    synced.set_fault("inventory", "renamed_stock_column")
    result = sync_data_type(data_type="inventory", force=True)
    assert (result.outcome, result.error_code) == ("failed", "schema_error")
    assert "Units in stock" in result.error and "Stock (all locations)" in result.error
    assert snapshot("inventory") == before


def test_a_stock_column_emptied_in_every_row_is_refused_as_a_suspicious_change(synced):
    before = snapshot("inventory")
    synced.set_fault("inventory", "blank_stock_column")
    result = sync_data_type(data_type="inventory", force=True)
    assert (result.outcome, result.error_code) == ("rolled_back", "suspicious_change")
    assert "column on_hand would be emptied" in result.error
    assert snapshot("inventory") == before
    evidence = SyncRun.objects.get(pk=result.run_id).details["evidence"]
    assert evidence["emptied"]["on_hand"] == evidence["filled"]["on_hand"] > 0


def test_a_close_delimited_report_cut_at_a_line_break_deletes_nothing(synced):
    before = snapshot("inventory")
    synced.set_fault("inventory", "cut_close_delimited")
    result = sync_data_type(data_type="inventory", force=True)
    assert (result.outcome, result.error_code) == ("rolled_back", "suspicious_drop")
    assert snapshot("inventory") == before


@pytest.mark.parametrize("verified, outcome", [(True, "success"), (False, "rolled_back")])
def test_a_small_drop_needs_a_verified_end(finale, verified, outcome):
    rows = [f"K{i:03d},thing,{i}" for i in range(200)]
    full = ("SKU,Name,Units in stock\r\n" + "\r\n".join(rows) + "\r\n").encode()
    cut = ("SKU,Name,Units in stock\r\n" + "\r\n".join(rows[:196]) + "\r\n").encode()  # 2 % fewer rows
    assert (
        sync_data_type(
            data_type="inventory", force=True, client_factory=lambda: BodyClient(full, verified=True)
        ).created
        == 200
    )
    result = sync_data_type(
        data_type="inventory", force=True, client_factory=lambda: BodyClient(cut, verified=verified)
    )
    assert result.outcome == outcome
    expected = 196 if verified else 200
    assert registry.get("inventory").model.objects.count() == expected
    if not verified:
        assert "could not be verified" in result.error


@pytest.mark.parametrize(
    "data_type, bad", [("inventory", 3), ("purchase_orders", 2), ("vendors", 2), ("boms", 2)]
)
def test_cells_the_database_cannot_hold_are_counted_bad_rows_and_their_rows_are_kept(synced, data_type, bad):
    before = {r["natural_key"]: r for r in snapshot(data_type)}
    synced.set_fault(data_type, "unstorable_cells")
    result = sync_data_type(data_type=data_type, force=True)
    assert (result.outcome, result.bad_rows) == ("success", bad), result.error
    after = {r["natural_key"]: r for r in snapshot(data_type)}
    keys = synced.unstorable_keys(data_type)
    kept = [" / ".join(k) if isinstance(k, tuple) else k for k in keys]
    for key in kept:
        if key in before:
            assert after[key] == before[key], key
        else:
            assert key not in after
    examples = SyncRun.objects.get(pk=result.run_id).details["bad_examples"]
    assert len(examples) == bad and all(e["reason"] for e in examples)


def test_odd_cells_never_reach_the_table_as_text(synced):
    """On SQLite a numeric column would store '١٢٣' as text (and the admin would fail on it)."""
    synced.set_fault("inventory", "unstorable_cells")
    sync_data_type(data_type="inventory", force=True)
    with db.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM finalesync_inventoryitem WHERE CAST(on_hand AS TEXT) LIKE '%١%'")
        assert cursor.fetchone()[0] == 0


def test_an_unexpected_database_error_is_one_clear_line_and_nothing_changes(synced, monkeypatch, caplog):
    before = snapshot("vendors")
    synced.mutate("vendors", ratio=0.3)

    def refuse(self, **kwargs):
        raise DataError(
            "value too long for type character varying(50)\nCONTEXT:  COPY finalesync_stage_x, line 7"
        )

    monkeypatch.setattr(staging.Staging, "apply", refuse)
    result = sync_data_type(data_type="vendors", force=True)
    assert (result.outcome, result.error_code, result.recoverable) == ("failed", "internal", False)
    assert "\n" not in result.error and "finalesync_stage" not in result.error and "COPY" not in result.error
    assert "server log" in result.advice
    assert "Traceback" in caplog.text or any(r.exc_info for r in caplog.records)
    assert snapshot("vendors") == before
    assert DataTypeConfig.objects.get(data_type="vendors").needs_attention


def test_a_failed_verification_after_applying_rolls_everything_back(synced, monkeypatch):
    before, versions = snapshot("boms"), history_rows("boms")
    synced.mutate("boms", ratio=0.2)
    real_apply = staging.Staging.apply

    def apply_and_lose_a_row(self, **kwargs):
        diff = real_apply(self, **kwargs)
        registry.get("boms").model.objects.filter(pk=registry.get("boms").model.objects.first().pk).delete()
        return diff

    monkeypatch.setattr(staging.Staging, "apply", apply_and_lose_a_row)
    result = sync_data_type(data_type="boms", force=True)
    assert (result.outcome, result.error_code) == ("rolled_back", "verification_failed")
    assert snapshot("boms") == before and history_rows("boms") == versions
    assert DataTypeConfig.objects.get(data_type="boms").history_seq == 1


def test_a_drip_feed_is_stopped_by_the_total_deadline_and_retried(synced, settings):
    settings.FINALE_TOTAL_TIMEOUT = 1.5
    settings.FINALE_READ_TIMEOUT = 5
    before = snapshot("inventory")
    synced.set_fault("inventory", "drip")
    result = sync_data_type(data_type="inventory", trigger="schedule")
    assert (result.outcome, result.error_code, result.recoverable) == ("failed", "timeout", True)
    assert result.retry_enqueued
    assert snapshot("inventory") == before


def test_admin_form_refuses_settings_that_would_disable_the_checks():
    from finalesync.admin import DataTypeConfigForm
    from finalesync.sync import ensure_configs

    config = ensure_configs()["inventory"]
    base = {"enabled": "on", "interval_minutes": 5, "max_drop_ratio": 0.2, "max_change_ratio": 0.75,
            "max_emptied_ratio": 0.5, "history_keep_syncs": 10, "history_keep_days": 7}  # fmt: skip
    assert DataTypeConfigForm(base, instance=config).is_valid()
    for field, value, message in [
        ("interval_minutes", 0, "at least 1 minute"),
        ("max_drop_ratio", 0, "more than 0"),
        ("max_drop_ratio", 1.5, "at most 1"),
        ("max_change_ratio", 0, "more than 0"),
        ("max_emptied_ratio", 2, "at most 1"),
        ("history_keep_syncs", 0, "at least 1"),
        ("history_keep_days", 0, "at least 1"),
    ]:
        form = DataTypeConfigForm({**base, field: value}, instance=config)
        assert not form.is_valid() and message in str(form.errors[field]), (field, value)


# --- memory: hostile inputs, peak RSS of a real runsync process ------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("data_type", ["inventory", "purchase_orders"])
def test_a_gzip_bomb_is_refused_with_bounded_memory(synced, data_type, transactional_db):
    synced.set_fault(data_type, "gzip_bomb")
    env = {**finale_env(synced), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "runsync", data_type, "--force", "--json"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    out = proc.stdout.read().decode()
    result = json.loads(out.splitlines()[-1])
    peak_mb = usage.ru_maxrss / 1024
    print(f"{data_type} gzip bomb: {result['outcome']} ({result['error'][:80]}), peak {peak_mb:.0f} MB")
    assert result["outcome"] in ("failed", "rolled_back") and result["recoverable"] is False
    assert peak_mb < 300


def test_repeated_keys_keep_the_first_good_row_and_a_bad_row_never_shadows_a_good_one(finale):
    filler = "".join(f"F{i:03d},filler,{i}\r\n" for i in range(100))
    first = f"SKU,Name,Units in stock\r\n{filler}A,a,1\r\nB,b,1\r\nC,c,1\r\n".encode()
    again = f"SKU,Name,Units in stock\r\n{filler}A,a,2\r\nA,a,3\r\nB,b,lots\r\nB,b,4\r\nC,c,x\r\nC,c,y\r\n".encode()
    sync_data_type(data_type="inventory", force=True, client_factory=lambda: BodyClient(first, verified=True))
    result = sync_data_type(
        data_type="inventory", force=True, client_factory=lambda: BodyClient(again, verified=True)
    )
    assert result.outcome == "success" and result.bad_rows == 4  # A's repeat, B's bad row, C's two bad rows
    stock = dict(registry.get("inventory").model.objects.filter(sku__in="ABC").values_list("sku", "on_hand"))
    assert {k: int(v) for k, v in stock.items()} == {"A": 2, "B": 4, "C": 1}  # C kept: both its rows were bad
    examples = SyncRun.objects.get(pk=result.run_id).details["bad_examples"]
    assert {"line": None, "reason": "duplicate key (first row kept)", "key": "A"} in examples
