"""A Finale Inventory simulator: generated, deterministic data served over HTTP with switchable faults.

Tests, benchmarks and the demo (`manage.py finalesim`) use it in place of app.finaleinventory.com.
"""

from .data import (
    BOM_HEADER,
    CSV_TYPES,
    DATA_TYPES,
    INVENTORY_HEADER,
    JUNK_VENDOR_ROWS,
    ORDER_FIELDS,
    ORDER_TYPES,
    REPORT_IDS,
    VENDOR_HEADER,
)
from .server import FAULT_KINDS, HTTP_FAULTS, ORDERS_ONLY_FAULTS, FinaleSimulator, validate_fault

__all__ = [
    "BOM_HEADER",
    "CSV_TYPES",
    "DATA_TYPES",
    "FAULT_KINDS",
    "HTTP_FAULTS",
    "INVENTORY_HEADER",
    "JUNK_VENDOR_ROWS",
    "ORDERS_ONLY_FAULTS",
    "ORDER_FIELDS",
    "ORDER_TYPES",
    "REPORT_IDS",
    "VENDOR_HEADER",
    "FinaleSimulator",
    "validate_fault",
]
