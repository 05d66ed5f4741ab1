"""Bills of materials: one row per (parent product, component), from the hierarchical BOM report CSV."""

from collections.abc import Iterator

from django.db import models

from ..mirror import MirroredRow
from .base import BadRow, Column, Record, ReportDataType, Unchanged, number


class BomLine(MirroredRow):
    parent_product_id = models.CharField(max_length=255)
    parent_description = models.TextField(blank=True)
    potential_build_qty = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    bom_quantity = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    component_product_id = models.CharField(max_length=255)
    component_description = models.TextField(blank=True)
    component_remaining = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    component_note = models.TextField(blank=True)
    bom_average_cost = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)

    class Meta:
        app_label = "finalesync"
        ordering = ["parent_product_id", "component_product_id"]
        verbose_name = "BOM line"


PARENT_FIELDS = ("parent_product_id", "parent_description", "potential_build_qty")


class Boms(ReportDataType):
    name = "boms"
    label = "Bills of materials"
    model = BomLine
    default_interval_minutes = 60
    description = "Parent products and their components (hierarchical report CSV)."
    key_columns = ("parent_product_id", "component_product_id")
    header_markers = ("product id", "component product id", "bom quantity")
    # Positional: the report repeats 'Description', first for the parent, then for the component.
    columns = (
        Column("parent_product_id", ("Product ID", "Parent Product ID"), required=True),
        Column("parent_description", ("Description", "Parent Description")),
        Column("potential_build_qty", ("Potential Build Qty",), number),
        Column("bom_quantity", ("BOM Quantity", "Quantity"), number),
        Column("component_product_id", ("Component Product ID", "Component"), required=True),
        Column("component_description", ("Description", "Component Description")),
        Column("component_remaining", ("Component Remaining",), number),
        Column("component_note", ("Component Note",)),
        Column("bom_average_cost", ("BOM Average Cost",), number),
    )

    def parse_rows(self, rows, header, known=frozenset()) -> Iterator[Record | BadRow | Unchanged]:
        """Component rows leave the parent cells blank and belong to the last parent seen. A component row
        before any parent keeps its blank parent cells and is counted as a bad row."""
        parent_at = [header.positions.get(f) for f in PARENT_FIELDS]
        component_at = header.positions["component_product_id"]
        width = header.width

        def with_parent(source):
            parent = None
            for row in source:
                if len(row) < width:
                    row = row + [""] * (width - len(row))
                own = [row[i] if i is not None else "" for i in parent_at]
                if own[0].strip():
                    parent = own
                    if not row[component_at].strip():
                        continue  # a parent line without a component of its own
                elif parent is not None and any(c.strip() for c in row):
                    row = list(row)
                    for i, value in zip(parent_at, parent, strict=True):
                        if i is not None:
                            row[i] = value
                yield row

        return super().parse_rows(with_parent(rows), header, known)


DATATYPE = Boms()
