"""A Finale Inventory simulator: generated, deterministic data served over HTTP with switchable faults.

Tests, benchmarks and the demo (`manage.py finalesim`) use it in place of app.finaleinventory.com.
"""

from .data import (
    BOM_HEADER,
    BOM_HEADER_ALT,
    CSV_TYPES,
    DATA_TYPES,
    HEADERS,
    INVENTORY_HEADER,
    INVENTORY_HEADER_ALT,
    JUNK_VENDOR_ROWS,
    ORDER_FIELDS,
    ORDER_TYPES,
    REPORT_IDS,
    SPELLINGS,
    VENDOR_HEADER,
    VENDOR_HEADER_ALT,
)
from .server import (
    FAULT_DATA_TYPES,
    FAULT_KINDS,
    HTTP_FAULTS,
    INVENTORY_ONLY_FAULTS,
    ORDERS_ONLY_FAULTS,
    FinaleSimulator,
    validate_fault,
)

__all__ = [
    "BOM_HEADER",
    "BOM_HEADER_ALT",
    "CSV_TYPES",
    "DATA_TYPES",
    "FAULT_DATA_TYPES",
    "FAULT_KINDS",
    "HEADERS",
    "HTTP_FAULTS",
    "INVENTORY_HEADER",
    "INVENTORY_HEADER_ALT",
    "INVENTORY_ONLY_FAULTS",
    "JUNK_VENDOR_ROWS",
    "ORDERS_ONLY_FAULTS",
    "ORDER_FIELDS",
    "ORDER_TYPES",
    "REPORT_IDS",
    "SPELLINGS",
    "VENDOR_HEADER",
    "VENDOR_HEADER_ALT",
    "FinaleSimulator",
    "validate_fault",
]
