"""Bills of materials: one row per (parent product, component), from the hierarchical BOM report CSV."""

import pyarrow as pa
import pyarrow.compute as pc
from django.db import models

from ..mirror import MirroredRow
from .base import Column, ReportDataType


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
    position = 30
    description = "Parent products and their components (hierarchical report CSV)."
    key_columns = ("parent_product_id", "component_product_id")
    # A component line takes its parent from the lines above it.
    lines_stand_alone = False
    # A BOM line is "so many of this component": without the quantity it says nothing.
    required = ("bom_quantity",)
    header_markers = ("product id", "component product id", "bom quantity")
    # Positional: the report repeats 'Description', first for the parent, then for the component.
    columns = (
        Column("parent_product_id", ("Product ID", "Parent Product ID")),
        Column("parent_description", ("Description", "Parent Description")),
        Column("potential_build_qty", ("Potential Build Qty",)),
        Column("bom_quantity", ("BOM Quantity", "Quantity")),
        Column("component_product_id", ("Component Product ID", "Component")),
        Column("component_description", ("Description", "Component Description")),
        Column("component_remaining", ("Component Remaining",)),
        Column("component_note", ("Component Note",)),
        Column("bom_average_cost", ("BOM Average Cost",)),
    )

    def prepare(self, table, header, state):
        """Component rows leave the parent cells blank and belong to the last parent seen (also across
        batches). A parent line without a component of its own is not a BOM line. A component row before any
        parent keeps its blank parent cells and becomes a bad row ('has no Product ID')."""
        at = header.positions
        parent_cols = [f"c{at[f]}" for f in PARENT_FIELDS if f in at]
        pid = pc.utf8_trim_whitespace(table[parent_cols[0]])
        is_parent = pc.not_equal(pid, "")
        component = pc.utf8_trim_whitespace(table[f"c{at['component_product_id']}"])
        parent_only = pc.and_(is_parent, pc.equal(component, ""))
        has_text = None
        for name in table.column_names:
            if name.startswith("c"):
                filled = pc.not_equal(pc.utf8_trim_whitespace(table[name]), "")
                has_text = filled if has_text is None else pc.or_(has_text, filled)
        fill = pc.and_(pc.invert(is_parent), has_text)
        carried = state.get("parent")
        columns = {}
        for i, name in enumerate(parent_cols):
            own = table[name].combine_chunks()
            known = pc.if_else(is_parent, own, pa.scalar(None, pa.string()))
            if carried is not None:
                known = pa.concat_arrays([pa.array([carried[i]], pa.string()), known])
                forward = pc.fill_null_forward(known)[1:]
            else:
                forward = pc.fill_null_forward(known)
            columns[name] = pc.if_else(pc.and_(fill, pc.is_valid(forward)), forward, own)
        parents = pc.indices_nonzero(is_parent)
        if len(parents):
            last = parents[-1].as_py()
            state["parent"] = [table[name][last].as_py() for name in parent_cols]
        for name, column in columns.items():
            table = table.set_column(table.column_names.index(name), name, column)
        return table.filter(pc.invert(parent_only))


DATATYPE = Boms()
