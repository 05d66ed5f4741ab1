"""Vendors: suppliers and their contacts, from the vendor report CSV (hourly by default)."""

import pyarrow as pa
import pyarrow.compute as pc
from django.db import models

from ..mirror import MirroredRow
from .base import Column, ReportDataType


class Vendor(MirroredRow):
    name = models.CharField(max_length=255)
    email = models.TextField(blank=True)
    phone = models.TextField(blank=True)
    street = models.TextField(blank=True)
    city = models.TextField(blank=True)
    state = models.TextField(blank=True)
    postal_code = models.TextField(blank=True)
    country = models.TextField(blank=True)
    website = models.TextField(blank=True)
    lead_time_days = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    notes = models.TextField(blank=True)

    class Meta:
        app_label = "finalesync"
        ordering = ["name"]


def is_vendor_name(names: pa.Array) -> pa.Array:
    """Finale's vendor report has filler rows: blank names, '--', and cells shifted left by a blank Name
    (which then start with ',' or '.'). None of them is a vendor."""
    names = pc.utf8_trim_whitespace(names)
    filler = pc.or_(pc.equal(names, ""), pc.equal(names, "--"))
    shifted = pc.or_(pc.starts_with(names, ","), pc.starts_with(names, "."))
    return pc.invert(pc.or_(filler, shifted))


class Vendors(ReportDataType):
    name = "vendors"
    label = "Vendors"
    model = Vendor
    default_interval_minutes = 60
    position = 20
    description = "Suppliers with contact details (report CSV)."
    key_columns = ("name",)
    header_markers = ("name", "email address 0", "phone number 0")
    columns = (
        Column("name", ("Name", "Vendor", "Vendor Name", "Supplier")),
        Column("email", ("Email address 0", "Email", "Email address")),
        Column("phone", ("Phone number 0", "Phone", "Phone number")),
        Column("street", ("Address 0 street address", "Address 0 line 1")),
        Column("city", ("Address 0 city",)),
        Column("state", ("Address 0 state / region",)),
        Column("postal_code", ("Address 0 postal code",)),
        Column("country", ("Address 0 country",)),
        Column("website", ("Website", "URL")),
        Column("lead_time_days", ("Lead time (days)", "Lead time")),
        Column("notes", ("Notes",)),
    )

    def prepare(self, table, header, state):
        return table.filter(is_vendor_name(table[f"c{header.positions['name']}"]))


DATATYPE = Vendors()
