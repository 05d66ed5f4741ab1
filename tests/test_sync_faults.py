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
    # A repair clears the line digests of the rows it puts back (their lines are read again next time).
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("id", "line_digest")} for r in rows]  # noqa: E731
    assert strip(after) == strip(before)
    log = FailureLog.objects.get(data_type=data_type)
    assert (log.backup_available, log.recovery_attempted, log.recovery_succeeded) == (True, True, True)
    assert log.restored_seq == result.restored_seq == 1


@pytest.mark.django_db
def test_a_forced_sync_never_applies_a_large_drop_but_a_confirmed_one_does_and_never_empty_data(finale):
    from finalesync.safety import Confirmation

    assert sync_data_type(data_type="inventory", force=True).outcome == "success"
    total = registry.get("inventory").model.objects.count()
    finale.set_fault("inventory", "drop_60")
    assert sync_data_type(data_type="inventory").outcome == "rolled_back"
    forced = sync_data_type(data_type="inventory", force=True)
    assert (forced.outcome, forced.error_code) == ("rolled_back", "suspicious_drop")
    assert registry.get("inventory").model.objects.count() == total
    confirmed = sync_data_type(data_type="inventory", force=True, confirm=Confirmation(by="ops"))
    assert confirmed.outcome == "success"
    assert (
        confirmed.deleted > total // 2
        and registry.get("inventory").model.objects.count() == confirmed.item_count
    )
    finale.set_fault("inventory", "empty")
    assert (
        sync_data_type(data_type="inventory", force=True, confirm=Confirmation(by="ops")).outcome
        == "rolled_back"
    )
    assert registry.get("inventory").model.objects.count() == confirmed.item_count


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


class BodyClient:
    """A client that serves one fixed report body (to vary only its formatting)."""

    def __init__(self, body: bytes):
        self.body = body

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def open_report(self, url, *, what="report"):
        import contextlib
        import io

        return contextlib.nullcontext(io.BytesIO(self.body))


@pytest.mark.django_db
def test_the_same_values_in_other_spellings_are_not_a_change(finale):
    model = registry.get("inventory").model
    plain = b"SKU,Name,Units in stock,Unit Cost\r\nA,Bolt,1234,12.5\r\nB,Nut,7,0.25\r\n"
    spelled = b'SKU,Name,Units in stock,Unit Cost\r\nA,  Bolt ,"1,234",$12.50\r\nB,Nut,7.0000,"$0.25"\r\n'
    first = sync_data_type(data_type="inventory", force=True, client_factory=lambda: BodyClient(plain))
    assert first.created == 2
    stamps = dict(model.objects.values_list("natural_key", "updated_at"))
    again = sync_data_type(data_type="inventory", force=True, client_factory=lambda: BodyClient(spelled))
    assert (again.created, again.updated, again.deleted, again.unchanged) == (0, 0, 0, 2)
    assert dict(model.objects.values_list("natural_key", "updated_at")) == stamps
