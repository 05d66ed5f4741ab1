"""Inventory: stock levels per product, from the inventory report CSV (every 5 minutes by default)."""

from django.db import models

from ..mirror import MirroredRow
from .base import Column, ReportDataType


class InventoryItem(MirroredRow):
    sku = models.CharField(max_length=255)
    name = models.TextField(blank=True)
    category = models.TextField(blank=True)
    status = models.TextField(blank=True)
    on_hand = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    on_order = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    reserved = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    reorder_point = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    reorder_variance = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    qty_to_order = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    moq = models.DecimalField("MOQ", max_digits=18, decimal_places=4, null=True, blank=True)
    sales_30d = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    sales_60d = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    sales_90d = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    unit_cost = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    unit_price = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    location = models.TextField(blank=True)
    bin = models.TextField(blank=True)
    supplier_sku = models.TextField(blank=True)
    supplier = models.TextField(blank=True)

    class Meta:
        app_label = "finalesync"
        ordering = ["sku"]
        verbose_name = "inventory item"


class Inventory(ReportDataType):
    name = "inventory"
    label = "Inventory"
    model = InventoryItem
    default_interval_minutes = 5
    position = 10
    description = "Stock levels per product (report CSV)."
    key_columns = ("sku",)
    # A stock mirror without the stock column would empty every stock level.
    required = ("on_hand",)
    columns = (
        Column("sku", ("SKU", "Product ID", "Product Code")),
        Column("name", ("Name", "Description", "Product Name")),
        Column("category", ("Category",)),
        Column("status", ("Status",)),
        Column("on_hand", ("Units in stock", "In Stock", "Quantity On Hand", "QoH units")),
        Column("on_order", ("Units On Order", "On Order")),
        Column("reserved", ("Units Reserved", "Reserved")),
        Column("reorder_point", ("Reorder Point", "ReOr point")),
        Column("reorder_variance", ("Reorder Variance", "ReOr var")),
        Column("qty_to_order", ("Qty to Order",)),
        Column("moq", ("MOQ", "Minimum order quantity")),
        Column("sales_30d", ("Sales last 30 days",)),
        Column("sales_60d", ("Sales last 60 days",)),
        Column("sales_90d", ("Sales last 90 days",)),
        Column("unit_cost", ("Unit Cost", "Cost")),
        Column("unit_price", ("Unit Price", "Price")),
        Column("location", ("Location", "Warehouse")),
        Column("bin", ("Bin",)),
        Column("supplier_sku", ("Supplier SKU",)),
        Column("supplier", ("Vendor", "Vendor Name", "Supplier", "Supplier 1", "Primary supplier")),
    )


DATATYPE = Inventory()
