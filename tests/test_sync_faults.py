"""Every Finale fault, for every data type it applies to, end to end through the simulator on loopback:
the previous rows stay exactly as they were, the outcome and classification are right, no secret is stored."""

import pytest

from finalesync.datatypes import registry
from finalesync.models import DataTypeConfig, SyncRun
from finalesync.sync import sync_data_type
from health.models import ConnectionHealth
from retries.models import FailureLog

from .conftest import SIM_SECRET

CSV_TYPES = ["inventory", "vendors", "boms"]
ALL_TYPES = [*CSV_TYPES, "purchase_orders"]

# fault → (outcome, error code, recoverable) — the same for every type unless overridden below
EXPECTED = {
    "http_401": ("failed", "auth", False),
    "http_403": ("failed", "auth", False),
    "http_404": ("failed", "not_found", False),
    "http_429": ("failed", "rate_limited", True),
    "http_500": ("failed", "server_error", True),
    "http_502": ("failed", "server_error", True),
    "http_503": ("failed", "server_error", True),
    "http_504": ("failed", "server_error", True),
    "slow": ("failed", "timeout", True),
    "reset": ("failed", "network", True),
    "truncated": ("failed", "truncated", True),
    "empty": ("rolled_back", "empty_data", False),
    "header_only": ("rolled_back", "empty_data", False),
    "html": ("failed", "html_response", False),
    "missing_column": ("failed", "schema_error", False),
    "garbage": ("failed", "malformed_data", False),
    "drop_60": ("rolled_back", "suspicious_drop", False),
}
# A cut JSON document cannot be told from any other broken JSON.
OVERRIDES = {("purchase_orders", "truncated"): ("failed", "malformed_data", False)}

CASES = [(t, f) for t in ALL_TYPES for f in EXPECTED] + [("purchase_orders", "unequal_arrays")]


def snapshot(data_type):
    model = registry.get(data_type).model
    return list(model.objects.order_by("natural_key").values())


@pytest.mark.django_db
@pytest.mark.parametrize("data_type, fault", CASES)
def test_fault_keeps_previous_rows_and_is_classified(finale, data_type, fault):
    first = sync_data_type(data_type=data_type, force=True)
    assert first.outcome == "success", first.error
    before = snapshot(data_type)
    assert len(before) > 0

    finale.set_fault(data_type, fault)
    result = sync_data_type(data_type=data_type, trigger=SyncRun.Trigger.SCHEDULE)

    outcome, code, recoverable = (
        ("failed", "malformed_data", False)
        if fault == "unequal_arrays"
        else OVERRIDES.get((data_type, fault), EXPECTED[fault])
    )
    assert (result.outcome, result.error_code, result.recoverable) == (outcome, code, recoverable), (
        result.error
    )
    assert snapshot(data_type) == before, "a failed sync changed rows"

    health = ConnectionHealth.objects.get(pk=data_type)
    assert health.consecutive_failures == 1
    assert health.status == ("degraded" if recoverable else "unhealthy")
    assert health.item_count == len(before)

    log = FailureLog.objects.get(data_type=data_type)
    assert log.error_code == code and log.rolled_back == (outcome == "rolled_back")
    assert log.recovery_attempted is False  # the live rows were still the good ones
    config = DataTypeConfig.objects.get(data_type=data_type)
    assert config.needs_attention is (not recoverable)

    stored = [result.error, log.error_message, str(log.error_details), str(SyncRun.objects.values_list())]
    for text in stored:
        assert SIM_SECRET not in text
        assert finale.api_key not in text or len(finale.api_key) < 6


@pytest.mark.django_db
@pytest.mark.parametrize("data_type", ALL_TYPES)
def test_recovered_source_syncs_again_and_resets_health(finale, data_type):
    assert sync_data_type(data_type=data_type, force=True).outcome == "success"
    finale.set_fault(data_type, "http_503")
    assert sync_data_type(data_type=data_type).outcome == "failed"
    finale.clear_faults()
    result = sync_data_type(data_type=data_type)
    assert result.outcome == "success"
    assert result.unchanged == result.item_count and result.created == result.updated == result.deleted == 0
    health = ConnectionHealth.objects.get(pk=data_type)
    assert (health.status, health.consecutive_failures) == ("healthy", 0)


@pytest.mark.django_db
@pytest.mark.parametrize("data_type", ALL_TYPES)
def test_empty_data_restores_rows_when_the_table_was_emptied(finale, data_type):
    assert sync_data_type(data_type=data_type, force=True).outcome == "success"
    before = snapshot(data_type)
    registry.get(data_type).model.objects.all().delete()
    finale.set_fault(data_type, "empty")

    result = sync_data_type(data_type=data_type)

    assert result.outcome == "rolled_back"
    after = snapshot(data_type)
    assert [r["natural_key"] for r in after] == [r["natural_key"] for r in before]
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("id",)} for r in rows]  # noqa: E731
    assert strip(after) == strip(before)
    log = FailureLog.objects.get(data_type=data_type)
    assert (log.backup_available, log.recovery_attempted, log.recovery_succeeded) == (True, True, True)
    assert log.backup_id == result.restored_backup_id


@pytest.mark.django_db
def test_forced_sync_confirms_a_large_drop_but_never_empty_data(finale):
    assert sync_data_type(data_type="inventory", force=True).outcome == "success"
    total = registry.get("inventory").model.objects.count()
    finale.set_fault("inventory", "drop_60")
    assert sync_data_type(data_type="inventory").outcome == "rolled_back"
    forced = sync_data_type(data_type="inventory", force=True)
    assert forced.outcome == "success"
    assert (
        forced.deleted > total // 2 and registry.get("inventory").model.objects.count() == forced.item_count
    )
    finale.set_fault("inventory", "empty")
    assert sync_data_type(data_type="inventory", force=True).outcome == "rolled_back"
    assert registry.get("inventory").model.objects.count() == forced.item_count


@pytest.mark.django_db
def test_resync_writes_only_changed_rows(finale):
    first = sync_data_type(data_type="inventory", force=True)
    model = registry.get("inventory").model
    stamps = dict(model.objects.values_list("natural_key", "updated_at"))
    finale.mutate("inventory", ratio=0.1)
    second = sync_data_type(data_type="inventory", force=True)
    assert second.outcome == "success"
    assert 0 < second.updated < first.item_count // 2
    assert second.updated + second.unchanged == first.item_count
    changed = [k for k, ts in model.objects.values_list("natural_key", "updated_at") if stamps[k] != ts]
    assert len(changed) == second.updated


@pytest.mark.django_db
def test_unchanged_rows_are_recognised_by_their_raw_text_and_stale_digests_refresh(finale):
    model = registry.get("inventory").model
    first = sync_data_type(data_type="inventory", force=True)
    assert model.objects.exclude(source_hash="").count() == first.item_count
    stamps = dict(model.objects.values_list("natural_key", "updated_at"))
    # as if one row had been read from differently formatted text last time
    key = model.objects.order_by("natural_key").values_list("natural_key", flat=True).first()
    real = model.objects.get(natural_key=key).source_hash
    model.objects.filter(natural_key=key).update(source_hash="0000000000000000")
    again = sync_data_type(data_type="inventory", force=True)
    assert (again.created, again.updated, again.deleted, again.unchanged) == (0, 0, 0, first.item_count)
    assert model.objects.get(natural_key=key).source_hash == real
    assert dict(model.objects.values_list("natural_key", "updated_at")) == stamps
