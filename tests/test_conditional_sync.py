"""The scheduled cycle leaves alone what is paused, snoozed, not due, or waiting for a person."""

from datetime import timedelta

import pytest
from django.utils import timezone

from finalesync.cycle import due_types
from finalesync.models import DataTypeConfig
from finalesync.sync import ensure_configs, sync_data_type


@pytest.mark.django_db
def test_fresh_install_syncs_every_type():
    assert due_types(now=timezone.now()) == ["inventory", "vendors", "boms", "purchase_orders"]


@pytest.mark.django_db
def test_paused_snoozed_and_not_due_types_are_skipped_with_the_reason_recorded():
    now = timezone.now()
    ensure_configs()
    DataTypeConfig.objects.filter(data_type="inventory").update(paused=True)
    DataTypeConfig.objects.filter(data_type="vendors").update(snoozed_until=now + timedelta(hours=1))
    DataTypeConfig.objects.filter(data_type="boms").update(last_run_at=now - timedelta(minutes=30))
    assert due_types(now=now) == ["purchase_orders"]
    reasons = dict(DataTypeConfig.objects.values_list("data_type", "last_skip_reason"))
    assert reasons["inventory"] == "paused"
    assert reasons["vendors"].startswith("snoozed until")
    assert reasons["boms"].startswith("not due until")
    # an expired snooze and a passed interval make them due again
    later = now + timedelta(minutes=61)
    assert due_types(now=later) == ["vendors", "boms", "purchase_orders"]


@pytest.mark.django_db
def test_non_recoverable_failure_waits_for_a_person_until_a_forced_run_succeeds(finale):
    finale.set_fault("vendors", "http_401")
    sync_data_type(data_type="vendors", trigger="schedule")
    later = timezone.now() + timedelta(days=1)
    assert "vendors" not in due_types(now=later)
    assert "waiting for a person" in DataTypeConfig.objects.get(data_type="vendors").last_skip_reason
    finale.clear_faults()
    assert sync_data_type(data_type="vendors", force=True).outcome == "success"
    assert "vendors" in due_types(now=later)


@pytest.mark.django_db
def test_recoverable_failure_does_not_need_a_person(finale):
    finale.set_fault("boms", "http_503")
    sync_data_type(data_type="boms", trigger="schedule")
    assert "boms" in due_types(now=timezone.now() + timedelta(hours=2))


@pytest.mark.django_db
def test_a_type_synced_just_after_the_last_cycle_is_due_at_the_next_one():
    cycle = timezone.now()
    ensure_configs()
    DataTypeConfig.objects.filter(data_type="inventory").update(last_run_at=cycle + timedelta(seconds=4))
    next_cycle = cycle + timedelta(minutes=5)
    assert "inventory" in due_types(now=next_cycle)
    assert "inventory" not in due_types(now=cycle + timedelta(minutes=3))
