"""Upgrading from finalesync 0.1: its backups (whole-table gzip CSV dumps) become restore points of the row
history, so the states they held can still be brought back."""

import csv
import gzip
import io
from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("finalesync", "0007_encrypted_api_key"), ("retries", "0003_failure_chart_index")]
COLUMNS = ["natural_key", "name", "email", "phone", "street", "city", "state", "postal_code", "country",
           "website", "lead_time_days", "notes", "extra", "row_hash", "source_hash", "created_at", "updated_at"]  # fmt: skip


def dump(rows) -> bytes:
    """A backup as 0.1 wrote it: gzip-compressed CSV, header first."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    return gzip.compress(text.getvalue().encode())


def row(key, notes, stamp):
    return [key, key, "", "", "", "", "", "", "", "", "7", notes, "{}", "h", "", stamp, stamp]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_backups_of_the_previous_version_become_restorable_points():
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    Backup, Chunk = old.get_model("retries", "Backup"), old.get_model("retries", "BackupChunk")
    Vendor, Config = old.get_model("finalesync", "Vendor"), old.get_model("finalesync", "DataTypeConfig")
    now = timezone.now()
    stamp = (now - timedelta(days=2)).isoformat()
    Config.objects.create(data_type="vendors", interval_minutes=60)
    first = Backup.objects.create(
        data_type="vendors", row_count=2, checksum="a", created_at=now - timedelta(days=2)
    )
    Chunk.objects.create(backup=first, seq=0, data=dump([row("Acme", "old", stamp), row("Beta", "b", stamp)]))
    second = Backup.objects.create(
        data_type="vendors", row_count=1, checksum="b", created_at=now - timedelta(days=1)
    )
    Chunk.objects.create(backup=second, seq=0, data=dump([row("Acme", "new", stamp)]))
    Vendor.objects.create(natural_key="Acme", name="Acme", notes="live", lead_time_days=7, row_hash="h",
                          created_at=now, updated_at=now)  # fmt: skip

    executor = MigrationExecutor(connection)
    executor.migrate(latest)

    from finalesync import history
    from finalesync.datatypes import registry
    from finalesync.models import DataTypeConfig, SyncRun
    from finalesync.restore import restore

    points = SyncRun.objects.filter(data_type="vendors", trigger="import").order_by("history_seq")
    assert [(p.history_seq, p.details.get("converted_backup")) for p in points] == [
        (1, first.pk),
        (2, second.pk),
        (3, None),
    ]
    assert DataTypeConfig.objects.get(data_type="vendors").history_seq == 3
    assert [p.pk for p in history.restore_points("vendors")] == [p.pk for p in reversed(points)]
    model = registry.get("vendors").model
    assert restore(data_type="vendors", seq=1, user="ops").outcome == "success"
    assert dict(model.objects.values_list("natural_key", "notes")) == {"Acme": "old", "Beta": "b"}
    assert restore(data_type="vendors", seq=3, user="ops").outcome == "success"
    assert dict(model.objects.values_list("natural_key", "notes")) == {"Acme": "live"}
