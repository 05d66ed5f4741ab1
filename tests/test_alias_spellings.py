"""The other header spellings finale-api.md lists reach the same rows, end to end: the simulator serves
each report with its `alt` spellings (SKU, Quantity On Hand, Price, Address 0 line 1, URL, ...), and the sync
stores exactly what it stores from the standard spellings."""

import pytest

from finalesync.datatypes import registry
from finalesync.sync import sync_data_type

VOLATILE = {"id", "created_at", "updated_at", "synced_at", "last_synced_at", "line_digest"}


def stored(data_type):
    model = registry.get(data_type).model
    return [
        {k: v for k, v in row.items() if k not in VOLATILE}
        for row in model.objects.order_by("natural_key").values()
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("data_type", ["inventory", "vendors", "boms"])
def test_alternative_header_spellings_store_the_same_rows(finale, data_type):
    finale.set_spellings("alt")
    alt = sync_data_type(data_type=data_type, force=True)
    assert alt.outcome == "success", alt.error
    from_alt = stored(data_type)

    registry.get(data_type).model.objects.all().delete()
    finale.set_spellings("standard")
    standard = sync_data_type(data_type=data_type, force=True)
    assert standard.outcome == "success", standard.error

    assert alt.item_count == standard.item_count > 0
    assert from_alt == stored(data_type)
    if data_type == "inventory":
        assert any(row["on_hand"] for row in from_alt) and any(row["unit_price"] for row in from_alt)
    if data_type == "vendors":
        assert any(row["street"] for row in from_alt) and any(row["website"] for row in from_alt)
