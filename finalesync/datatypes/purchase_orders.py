"""Purchase orders with their lines, from Finale's order collection (REST, column-major JSON)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pyarrow as pa
from django.db import connection, models

from ..errors import MalformedData, SchemaError
from ..mirror import MirroredRow
from ..parsing import ERROR, LINE
from ..values import RowError, canonical_number
from .base import EXTRA, KEY, DataType, Parsed, Source


class PurchaseOrder(MirroredRow):
    order_id = models.CharField(max_length=255)
    order_url = models.TextField(blank=True)
    status = models.CharField(max_length=50, blank=True)
    order_date = models.DateTimeField(null=True, blank=True)
    receive_date = models.DateTimeField(null=True, blank=True)
    last_updated = models.DateTimeField(null=True, blank=True)
    supplier_party_id = models.TextField(blank=True)
    origin_facility_url = models.TextField(blank=True)
    destination_facility_url = models.TextField(blank=True)
    public_notes = models.TextField(blank=True)
    private_notes = models.TextField(blank=True)
    line_count = models.IntegerField(default=0)
    total_amount = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    # The order's lines as Finale sent them (productId, quantity, unitPrice, ...), so nothing is lost.
    lines = models.JSONField(default=list, blank=True)

    class Meta:
        app_label = "finalesync"
        ordering = ["-order_date", "order_id"]


PURCHASE_ORDER = "PURCHASE_ORDER"
BATCH = 10_000
# Fields of the collection without which it cannot be read as purchase orders.
REQUIRED_FIELDS = ("orderId", "orderTypeId", "statusId")
# Where each column of ours comes from in the order collection, for people (docs/finale-reports.md is
# generated from it; tests/test_docs.py checks it against `order_values`).
FINALE_FIELDS = {
    "order_id": "`orderId` (the key; surrounding spaces trimmed)",
    "order_url": "`orderUrl`",
    "status": "`statusId` (`ORDER_CREATED` draft, `ORDER_LOCKED` committed, `ORDER_COMPLETED`, `ORDER_CANCELLED`)",
    "order_date": "`orderDate`",
    "receive_date": "`receiveDate`",
    "last_updated": "`lastUpdatedDate`",
    "supplier_party_id": "`orderRoleList`: the `partyId` of the role whose `roleTypeId` is `SUPPLIER`",
    "origin_facility_url": "`originFacilityUrl`",
    "destination_facility_url": "`destinationFacilityUrl`",
    "public_notes": "`publicNotes`",
    "private_notes": "`privateNotes`",
    "line_count": "`orderItemList`: how many lines",
    "total_amount": "`orderItemList`: the sum of `quantity` × `unitPrice` over the lines that have both",
    "lines": "`orderItemList`, kept whole (`productId`, `quantity`, `unitPrice`, …)",
}


def parse_time(value) -> datetime | None:
    """Finale sends ISO 8601, with or without an offset; a naive time is taken as UTC."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise RowError(f"not a date: {str(value)[:40]!r}")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise RowError(f"not a date: {value[:40]!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _text(value) -> str:
    if value is None:
        return ""
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise RowError(f"expected text, got {type(value).__name__}")
    value = str(value)
    if "\x00" in value:
        raise RowError("contains a NUL byte")
    return value


def _lines(items) -> tuple[list, str | None]:
    if items is None:
        return [], None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise RowError("orderItemList is not a list of items")
    total = 0.0
    priced = False
    for item in items:
        quantity, price = item.get("quantity"), item.get("unitPrice")
        if quantity is not None and price is not None:
            try:
                total += float(quantity) * float(price)
            except (TypeError, ValueError):
                raise RowError("order line with a non-numeric quantity or price") from None
            priced = True
    if priced and not math.isfinite(total):
        raise RowError("order line with a quantity or price that is not a finite number")
    return items, (canonical_number(f"{total:.4f}") if priced else None)


def _supplier(roles) -> str:
    if not roles:
        return ""
    if not isinstance(roles, list):
        raise RowError("orderRoleList is not a list")
    for role in roles:
        if isinstance(role, dict) and role.get("roleTypeId") == "SUPPLIER":
            return _text(role.get("partyId"))
    return ""


def rows_from_columns(collection) -> Iterator[tuple[int, dict]]:
    """Turn Finale's column-major collection into (index, order dict) pairs.

    Raises MalformedData when the collection is not an object of equal-length arrays (a short array would
    otherwise silently pair fields of different orders), SchemaError when `orderId` is missing.
    """
    if not isinstance(collection, dict):
        raise MalformedData(
            f"order collection is a {type(collection).__name__}, expected an object of arrays"
        )
    if not collection:
        return
    if "orderId" not in collection:
        raise SchemaError(
            "order collection has no orderId field", details={"fields": sorted(collection)[:40]}
        )
    lengths = {}
    for name, values in collection.items():
        if not isinstance(values, list):
            raise MalformedData(f"order collection field {name!r} is not an array")
        lengths[name] = len(values)
    if len(set(lengths.values())) > 1:
        expected = lengths["orderId"]
        odd = sorted(n for n, size in lengths.items() if size != expected)[:5]
        raise MalformedData(
            f"order collection arrays have unequal lengths (orderId has {expected}; {', '.join(odd)} differ)",
            details={"lengths": {n: lengths[n] for n in odd}},
        )
    missing = [name for name in REQUIRED_FIELDS if name not in collection]
    if missing:
        raise SchemaError(
            f"order collection lacks required field(s): {', '.join(missing)}",
            details={"fields": sorted(collection)[:40], "missing": missing},
        )
    names = list(collection)
    columns = [collection[n] for n in names]
    for index, values in enumerate(zip(*columns, strict=True)):
        yield index, dict(zip(names, values, strict=True))


def _stamp(value: datetime | None) -> str | None:
    """A datetime as the text the database's own driver would store (so unchanged rows compare equal)."""
    return None if value is None else str(connection.ops.adapt_datetimefield_value(value))


class PurchaseOrders(DataType):
    name = "purchase_orders"
    label = "Purchase orders"
    model = PurchaseOrder
    default_interval_minutes = 15
    position = 40
    description = "Purchase orders and their lines (REST order collection)."
    source_kind = "api"
    # The order's id is its natural key.
    key_columns = ("order_id",)
    # Order texts are kept exactly as Finale sent them (report cells are trimmed).
    trim_text = False
    required = ("order_id", "status")
    computed = frozenset({"order_date", "receive_date", "last_updated", "line_count", "lines"})

    @contextmanager
    def open(self, *, client, report_url: str = "") -> Iterator[Source]:
        yield OrdersSource(self, client.order_collection())

    def read(self, collection, *, max_examples: int = 5) -> Iterator[Parsed]:
        """Parse a decoded order collection (tests, the golden fixtures)."""
        for raw in OrdersSource(self, collection).batches():
            yield self.finish(raw, max_examples=max_examples)

    def order_values(self, order: dict) -> tuple:
        """One order's field values, in field order (raises RowError for an order that cannot be read)."""
        key = _text(order.get("orderId")).strip()
        lines, total = _lines(order.get("orderItemList"))
        try:
            lines_json = json.dumps(lines, sort_keys=True, ensure_ascii=False, allow_nan=False)
        except ValueError:
            raise RowError("an order line holds NaN or Infinity") from None
        return (
            key,
            _text(order.get("orderUrl")),
            _text(order.get("statusId")),
            _stamp(parse_time(order.get("orderDate"))),
            _stamp(parse_time(order.get("receiveDate"))),
            _stamp(parse_time(order.get("lastUpdatedDate"))),
            _supplier(order.get("orderRoleList")),
            _text(order.get("originFacilityUrl")),
            _text(order.get("destinationFacilityUrl")),
            _text(order.get("publicNotes")),
            _text(order.get("privateNotes")),
            len(lines),
            total,
            lines_json,
        )


class OrdersSource(Source):
    """Raw batches of purchase orders: other order types are dropped here, because Finale's own order-type
    filter is not reliable."""

    def __init__(self, datatype: PurchaseOrders, collection):
        self.datatype = datatype
        self.collection = collection
        # The client's OrderCollection says whether the transfer's end was verified.
        self.end_verified = getattr(collection, "end_verified", None)

    def batches(self, *, unchanged=None) -> Iterator[pa.Table]:
        fields = self.datatype.fields
        rows: list[tuple] = []
        for index, order in rows_from_columns(self.collection):
            if order.get("orderTypeId") != PURCHASE_ORDER:
                continue
            key = error = None
            try:
                key = _text(order.get("orderId")).strip() or None
                if key is None:
                    raise RowError("has no orderId")
                values = self.datatype.order_values(order)
            except RowError as exc:
                error, values = str(exc), (None,) * len(fields)
            rows.append((index + 1, key, error, *values))
            if len(rows) >= BATCH:
                yield self._table(rows)
                rows = []
        if rows:
            yield self._table(rows)

    def _table(self, rows: list[tuple]) -> pa.Table:
        names = [LINE, KEY, ERROR, *self.datatype.fields]
        types = {LINE: pa.int64(), "line_count": pa.int64()}
        columns = {
            name: pa.array(list(column), types.get(name, pa.string()))
            for name, column in zip(names, zip(*rows, strict=True), strict=True)
        }
        columns[EXTRA] = pa.array(["{}"] * len(rows), pa.string())
        return pa.table(columns)


DATATYPE = PurchaseOrders()
