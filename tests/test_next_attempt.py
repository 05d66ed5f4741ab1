"""One owner of a type's next attempt: while a retry is open, or Finale asked us to wait, the schedule leaves
the type alone (a person's forced run still goes); one outage counts once; a later success supersedes failed
retries; new credentials in the environment un-stick a type by themselves; plain runs do not fill the audit."""

import contextlib
import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from finalesync.cycle import due_types
from finalesync.models import AuditLog, DataTypeConfig
from finalesync.sync import ensure_configs, sync_data_type
from health.models import ConnectionHealth
from health.system import get_sync_system_health
from retries.models import RetryItem

pytestmark = pytest.mark.django_db


def test_an_open_retry_owns_the_next_attempt_and_the_outage_counts_once(finale):
    assert sync_data_type(data_type="inventory", force=True).outcome == "success"
    finale.set_fault("inventory", "http_503")
    failed = sync_data_type(data_type="inventory", trigger="schedule")
    item = RetryItem.objects.get(data_type="inventory", status="pending")
    assert failed.retry_enqueued and failed.followups["retry_id"] == item.pk
    # The next cycles (every 5 min; the type is due every 5 min) leave it to the retry until it is due.
    soon = timezone.now() + timedelta(minutes=2)
    assert "inventory" not in due_types(now=soon)
    reason = DataTypeConfig.objects.get(data_type="inventory").last_skip_reason
    assert f"retry #{item.pk} owns the next attempt" in reason
    assert ConnectionHealth.objects.get(pk="inventory").consecutive_failures == 1
    # A person's forced run still goes, and its success closes the retry.
    finale.clear_faults()
    assert sync_data_type(data_type="inventory", force=True, trigger="manual").outcome == "success"
    item.refresh_from_db()
    assert (item.status, item.resolution) == ("completed", "superseded by a manual sync")
    assert "inventory" in due_types(now=timezone.now() + timedelta(minutes=6))


def test_retry_after_holds_the_schedule_too(finale):
    finale.set_fault("vendors", "http_429")
    result = sync_data_type(data_type="vendors", trigger="schedule")
    assert (result.error_code, result.retry_after_seconds) == ("rate_limited", 120)
    config = DataTypeConfig.objects.get(data_type="vendors")
    assert config.held_until >= timezone.now() + timedelta(seconds=110)
    assert "vendors" not in due_types(now=timezone.now() + timedelta(seconds=61))


def test_a_later_success_supersedes_failed_retries(finale):
    sync_data_type(data_type="boms", force=True)
    failed = RetryItem.objects.create(
        data_type="boms", status="failed", next_retry_at=timezone.now(), resolution="gave up after 3 retries"
    )
    assert get_sync_system_health().retry_queue["failed"] == 1
    assert sync_data_type(data_type="boms", force=True).outcome == "success"
    failed.refresh_from_db()
    assert failed.status == "failed" and failed.superseded_at is not None
    assert get_sync_system_health().retry_queue["failed"] == 0


def test_new_credentials_in_the_environment_unstick_a_type_by_themselves(finale, settings):
    finale.set_fault("purchase_orders", "http_401")
    assert sync_data_type(data_type="purchase_orders", trigger="schedule").error_code == "auth"
    later = timezone.now() + timedelta(days=1)
    assert "purchase_orders" not in due_types(now=later)  # same credentials: still waiting
    config = DataTypeConfig.objects.get(data_type="purchase_orders")
    assert config.attention_fingerprint and settings.FINALE_API_SECRET not in config.attention_fingerprint
    settings.FINALE_API_SECRET = "a-new-secret-from-the-environment"
    assert "purchase_orders" in due_types(now=later)
    assert not DataTypeConfig.objects.get(data_type="purchase_orders").needs_attention


def test_a_schema_failure_is_not_unstuck_by_new_credentials(finale, settings):
    finale.set_fault("vendors", "missing_column")
    sync_data_type(data_type="vendors", trigger="schedule")
    settings.FINALE_API_SECRET = "a-new-secret-from-the-environment"
    assert "vendors" not in due_types(now=timezone.now() + timedelta(days=1))


def test_plain_runs_leave_the_audit_log_alone_and_forced_ones_are_audited(finale):
    ensure_configs()
    DataTypeConfig.objects.update(last_run_at=timezone.now())  # nothing is due
    with contextlib.redirect_stdout(io.StringIO()):
        call_command("runsync", "--json")
        call_command("runsync", "--json")
    assert not AuditLog.objects.exists()
    assert DataTypeConfig.objects.get(data_type="inventory").last_skip_reason.startswith("not due until")
    with contextlib.redirect_stdout(io.StringIO()):
        call_command("runsync", "vendors", "--force", "--json")
    assert list(AuditLog.objects.values_list("action", "target")) == [("sync_now", "vendors (forced)")]


def test_a_run_in_which_every_type_waits_for_a_person_exits_1(finale):
    ensure_configs()
    DataTypeConfig.objects.update(needs_attention=True, attention_reason="HTTP 401", attention_code="auth")
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command("runsync", "--json", stdout=out)
    assert exit_.value.code == 1
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert all(o["outcome"] == "skipped" and "waiting for a person" in o["skip_reason"] for o in lines)
    assert all(o["advice"] for o in lines)
