"""The health history behind availability: recording adds a HealthChange only when a type's stored status
changes, and the migration that starts the history seeds each type's status as it stood."""

import importlib
from datetime import timedelta

import pytest
from django.apps import apps
from django.utils import timezone

from finalesync.sync import sync_data_type
from health import recording
from health.models import ConnectionHealth, HealthChange

pytestmark = pytest.mark.django_db


def history(data_type):
    return list(
        HealthChange.objects.filter(data_type=data_type)
        .order_by("at", "id")
        .values_list("previous", "status")
    )


def test_a_change_of_status_is_recorded_once():
    now = timezone.now()
    recording.record_success(data_type="vendors", item_count=10, now=now)
    recording.record_success(data_type="vendors", item_count=11, now=now + timedelta(minutes=5))
    for i in range(4):  # degraded, degraded, then unhealthy from the third in a row
        recording.record_failure(
            data_type="vendors",
            error_message="HTTP 503",
            recoverable=True,
            now=now + timedelta(minutes=10 + i),
        )
    recording.record_success(data_type="vendors", item_count=12, now=now + timedelta(minutes=20))
    assert history("vendors") == [
        ("unknown", "healthy"),
        ("healthy", "degraded"),
        ("degraded", "unhealthy"),
        ("unhealthy", "healthy"),
    ]
    unhealthy = HealthChange.objects.get(data_type="vendors", status="unhealthy")
    assert unhealthy.at == now + timedelta(minutes=12)


def test_a_failure_that_needs_a_person_is_unhealthy_at_once():
    now = timezone.now()
    recording.record_failure(data_type="boms", error_message="HTTP 401", recoverable=False, now=now)
    assert history("boms") == [("unknown", "unhealthy")]


def test_a_real_sync_records_its_status(finale):
    assert sync_data_type(data_type="vendors", force=True).outcome == "success"
    finale.set_fault("vendors", "http_503")
    assert sync_data_type(data_type="vendors").outcome == "failed"
    assert history("vendors") == [("unknown", "healthy"), ("healthy", "degraded")]


def test_the_history_starts_with_each_type_as_it_stands():
    seed = importlib.import_module("health.migrations.0006_seed_health_changes")
    checked = timezone.now() - timedelta(hours=3)
    ConnectionHealth.objects.create(data_type="inventory", status="degraded", last_check_time=checked)
    ConnectionHealth.objects.create(data_type="boms", status="healthy", last_check_time=checked)
    HealthChange.objects.create(data_type="boms", at=checked, status="healthy", previous="unknown")
    seed.seed(apps, None)
    seed.seed(apps, None)  # twice: nothing more
    assert history("inventory") == [("", "degraded")]
    assert HealthChange.objects.get(data_type="inventory").at == checked
    assert history("boms") == [("unknown", "healthy")]  # it had a history already
