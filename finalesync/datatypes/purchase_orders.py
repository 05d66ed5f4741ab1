"""Purchase orders with their lines, from Finale's order collection (REST, column-major JSON)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from django.db import models

from ..errors import MalformedData, SchemaError
from ..mirror import MirroredRow
from .base import BadRow, DataType, Record, RowError, number


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
FIELDS = (
    "order_id",
    "order_url",
    "status",
    "order_date",
    "receive_date",
    "last_updated",
    "supplier_party_id",
    "origin_facility_url",
    "destination_facility_url",
    "public_notes",
    "private_notes",
    "line_count",
    "total_amount",
    "lines",
)


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
    if not isinstance(value, (str, int, float)):
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
    return items, (number(f"{total:.4f}") if priced else None)


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
    names = list(collection)
    columns = [collection[n] for n in names]
    for index, values in enumerate(zip(*columns, strict=True)):
        yield index, dict(zip(names, values, strict=True))


class PurchaseOrders(DataType):
    name = "purchase_orders"
    label = "Purchase orders"
    model = PurchaseOrder
    default_interval_minutes = 15
    source = "orders"
    description = "Purchase orders and their lines (REST order collection)."

    @property
    def fields(self) -> tuple[str, ...]:
        return FIELDS

    def records(self, source, *, known=frozenset()) -> Iterator[Record | BadRow]:
        """`source` is the decoded order collection. Other order types are dropped here, because Finale's
        own order-type filter is not reliable."""
        for index, order in rows_from_columns(source):
            if order.get("orderTypeId") != PURCHASE_ORDER:
                continue
            key = None
            try:
                key = _text(order.get("orderId")).strip()
                if not key:
                    raise RowError("has no orderId")
                if len(key) > 255:
                    raise RowError("orderId longer than 255 characters")
                lines, total = _lines(order.get("orderItemList"))
                values = (
                    key,
                    _text(order.get("orderUrl")),
                    _text(order.get("statusId")),
                    parse_time(order.get("orderDate")),
                    parse_time(order.get("receiveDate")),
                    parse_time(order.get("lastUpdatedDate")),
                    _supplier(order.get("orderRoleList")),
                    _text(order.get("originFacilityUrl")),
                    _text(order.get("destinationFacilityUrl")),
                    _text(order.get("publicNotes")),
                    _text(order.get("privateNotes")),
                    len(lines),
                    total,
                    lines,
                )
            except RowError as exc:
                yield BadRow(line=index + 1, reason=str(exc), key=key or None)
                continue
            yield Record(key, values, {})


DATATYPE = PurchaseOrders()
