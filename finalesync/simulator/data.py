"""Deterministic generated Finale data: inventory, vendor and BOM reports (CSV), the order collection (JSON).

Every row is a pure function of (seed, data type, row index, mutation events), computed from a splitmix64
integer mix rather than `random.Random` (seeding one per row costs ~4 µs, too slow for a million rows) or
Python's `hash()` (salted per process, so not reproducible). Row i can therefore be produced on its own and
stays the same when the data set grows, which keeps bodies byte-identical for the same seed and counts and
lets everything stream without holding the data in memory.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import struct
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

DATA_TYPES = ("inventory", "vendors", "boms", "purchase_orders")
CSV_TYPES = ("inventory", "vendors", "boms")
REPORT_IDS = {"inventory": "100001", "vendors": "100002", "boms": "100003"}
REPORT_TITLES = {"inventory": "Inventory report", "vendors": "Vendors", "boms": "Bill of materials"}

INVENTORY_HEADER = [
    "Product ID", "Description", "Category", "Status", "Units in stock", "Units On Order", "Units Reserved",
    "ReOr point", "ReOr var", "Qty to Order", "MOQ", "Sales last 30 days", "Sales last 90 days", "Unit Cost",
    "Unit Price", "Location", "Bin", "Supplier SKU", "Primary supplier", "Lot tracking",
]  # fmt: skip
VENDOR_HEADER = [
    "Name", "Email address 0", "Email address 1", "Phone number 0", "Address 0 street address",
    "Address 0 city", "Address 0 state / region", "Address 0 postal code", "Address 0 country", "Website",
    "Lead time (days)", "Notes",
]  # fmt: skip
BOM_HEADER = [
    "Product ID", "Description", "Potential \nBuild \nQty", "BOM Quantity", "Component Product ID",
    "Description", "Component Remaining", "Component Note", "BOM Average Cost",
]  # fmt: skip
# The same reports built with other spellings from finale-api.md (and one in other letter case), to prove the
# column aliases end to end. Same columns, same order, same data: only the header row differs.
INVENTORY_HEADER_ALT = [
    "SKU", "Product Name", "Category", "Status", "Quantity On Hand", "On Order", "Reserved",
    "Reorder Point", "Reorder Variance", "qty to order", "Minimum order quantity", "Sales last 30 days",
    "Sales last 90 days", "Cost", "Price", "Warehouse", "Bin", "Supplier SKU", "Vendor Name", "Lot tracking",
]  # fmt: skip
VENDOR_HEADER_ALT = [
    "Name", "Email address 0", "Email address 1", "Phone number 0", "Address 0 line 1", "Address 0 city",
    "Address 0 state / region", "Address 0 postal code", "Address 0 country", "URL", "Lead time (days)",
    "Notes",
]  # fmt: skip
BOM_HEADER_ALT = [
    "Product ID", "Description", "Potential Build Qty", "BOM Quantity", "Component Product ID", "Description",
    "Component Remaining", "Component Note", "BOM Average Cost",
]  # fmt: skip
SPELLINGS = ("standard", "alt")
HEADERS = {
    "standard": {"inventory": INVENTORY_HEADER, "vendors": VENDOR_HEADER, "boms": BOM_HEADER},
    "alt": {"inventory": INVENTORY_HEADER_ALT, "vendors": VENDOR_HEADER_ALT, "boms": BOM_HEADER_ALT},
}
ORDER_FIELDS = (
    "orderId", "orderUrl", "orderTypeId", "statusId", "orderDate", "receiveDate", "lastUpdatedDate",
    "originFacilityUrl", "destinationFacilityUrl", "publicNotes", "privateNotes", "orderRoleList",
    "orderItemList",
)  # fmt: skip
ORDER_TYPES = ("PURCHASE_ORDER", "SALES_ORDER", "TRANSFER_ORDER")
ORDER_STATUSES = ("ORDER_CREATED", "ORDER_LOCKED", "ORDER_COMPLETED", "ORDER_CANCELLED")

# Vendor rows that are not vendors (a `--` name, a blank name); emitted in every vendor report.
JUNK_VENDOR_ROWS = 2
# Base data is anchored to a fixed instant (not the wall clock) so that bodies are reproducible.
ANCHOR = datetime(2026, 11, 1, 9, 0, 0)
# Smallest SKU space BOMs and order lines draw from, so tiny inventories still give valid BOMs (up to 6
# distinct components besides the parent); below this size they may reference SKUs beyond the inventory.
MIN_SKU_SPACE = 16
CHUNK_CHARS = 64 * 1024

_M = (1 << 64) - 1
_G = 0x9E3779B97F4A7C15
_C1 = 0xD6E8FEB86659FD93
_C2 = 0xA0761D6478BD642F
_C3 = 0xE7037ED1A0B428DB


def mix64(x: int) -> int:
    """Return the splitmix64 finaliser of `x`: a fast, well-spread 64-bit integer hash."""
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M
    return x ^ (x >> 31)


def stream_base(seed: int, label: str) -> int:
    """Return a 64-bit stream key for (seed, label), stable across processes and Python versions."""
    h = mix64((seed * _G + 0x51ED27) & _M)
    for b in label.encode():
        h = mix64(h ^ b)
    return h


def fraction_threshold(ratio: float) -> int:
    """Return the 64-bit threshold under which a uniform hash falls with probability `ratio`."""
    return min(_M + 1, max(0, int(ratio * (1 << 64))))


# --- word lists (small, precomputed; combinations give plenty of variety) ---------------------------------
_ADJ = (
    "Heavy-Duty", "Compact", "Premium", "Standard", "Industrial", "Mini", "Deluxe", "Rugged", "Slim",
    "Universal", "Adjustable", "Reinforced", "Lightweight", "Precision", "Classic", "Pro", "Eco", "Ultra",
    "Flexible", "Insulated", "Waterproof", "Quick-Release", "Low-Profile", "Double-Sided",
)  # fmt: skip
_MAT = (
    "Steel", "Stainless", "Aluminum", "Brass", "Copper", "Nylon", "Rubber", "Silicone", "Oak", "Bamboo",
    "Carbon", "Titanium", "Ceramic", "Glass", "Polycarbonate", "Leather", "Cotton", "Zinc-Plated", "PVC",
    "Felt",
)  # fmt: skip
_NOUN = (
    "Widget", "Bracket", "Hinge", "Clamp", "Bolt", "Washer", "Gasket", "Valve", "Fitting", "Coupling",
    "Bearing", "Spring", "Handle", "Knob", "Latch", "Pulley", "Sprocket", "Flange", "Spacer", "Bushing",
    "Connector", "Adapter", "Cable", "Hose", "Filter", "Nozzle", "Panel", "Shelf", "Tray", "Caster", "Sensor",
    "Switch", "Enclosure", "Rivet", "Anchor", "Grommet", "Strap", "Buckle", "Mount", "Seal",
)  # fmt: skip
_SIZE = (
    "12mm", "8mm", '1/4"', '3/8"', '1/2"', "2 in", "10 ft", "M6", "M8", "Ø25 mm", "Small", "Large", "XL",
    "500 ml", "1 L", "Pack of 10", "Pack of 100", "24V", "110 V", "2.5 m",
)  # fmt: skip
_CATEGORIES = (
    "Hardware", "Fasteners", "Plumbing", "Electrical", "Tools", "Packaging", "Safety", "Janitorial",
    "Office Supplies", "Raw Materials", "Finished Goods", "Spare Parts",
)  # fmt: skip
_LOCATIONS = ("Main Warehouse", "East DC", "West DC", "Overflow Storage", "Retail Store", "Main Warehouse")
_STOCK_SCALE = (50, 500, 5000, 60000)
_MOQ = ("1", "5", "10", "12", "25", "50", "100", "500", "1,000")
_LOT = ("No", "No", "No", "Yes", "", "No", "Yes", "No")

_V_PREFIX = (
    "Acme", "Northwind", "Summit", "Pioneer", "Bluewater", "Redwood", "Keystone", "Ironclad", "Great Lakes",
    "Pacific Rim", "Liberty", "Evergreen", "Silverline", "Cornerstone", "Granite", "Harbor", "Meridian",
    "Apex", "Atlas", "Beacon", "Cascade", "Frontier", "Horizon", "Lakeside", "Midwest", "Orion", "Prairie",
    "Riverbend", "Sterling", "Tri-State", "Valley", "Westfield", "Müller", "Søren", "O'Brien", "Nguyễn",
)  # fmt: skip
_V_KIND = (
    "Supply", "Industrial", "Components", "Trading", "Manufacturing", "Distribution", "Hardware", "Packaging",
    "Imports", "Wholesale", "Tool & Die", "Electric",
)  # fmt: skip
_V_SUFFIX = ("Co.", "Inc.", "LLC", "Ltd.", "Corp.", "GmbH", "& Sons", "Group")
# (city, state / region, postal code prefix, country, phone prefix)
_PLACES = (
    ("Chicago", "IL", "606", "United States", "+1 (312) "),
    ("Dallas", "TX", "752", "United States", "+1 (214) "),
    ("Columbus", "OH", "432", "United States", "+1 (614) "),
    ("Portland", "OR", "972", "United States", "+1 (503) "),
    ("Atlanta", "GA", "303", "United States", "+1 (404) "),
    ("Newark", "NJ", "071", "United States", "+1 (973) "),
    ("Denver", "CO", "802", "United States", "+1 (303) "),
    ("Phoenix", "AZ", "850", "United States", "+1 (602) "),
    ("Toronto", "ON", "M5V ", "Canada", "+1 (416) "),
    ("Montréal", "QC", "H2X ", "Canada", "+1 (514) "),
    ("München", "Bayern", "803", "Germany", "+49 89 "),
    ("Monterrey", "Nuevo León", "640", "Mexico", "+52 81 "),
    ("Leeds", "West Yorkshire", "LS1 ", "United Kingdom", "+44 113 "),
)
_STREETS = (
    "Industrial Pkwy", "Commerce Dr", "Main St", "Harbor Blvd", "Oak Ave", "Enterprise Way", "Factory Rd",
    "Mill St", "Lakeview Dr", "Hauptstraße",
)  # fmt: skip
_V_NOTES = (
    "", "", "", "", "Net 30", "Net 30, ships FOB origin", 'Ask for "Dana" in sales', "Minimum order $500",
    "Closed Dec 24 – Jan 2\nOrder by Thursday for Monday delivery", "Preferred supplier",
    "Prepay only; no credit terms", "EDI via SPS Commerce",
)  # fmt: skip
_V_NOTES_CHANGED = (
    "Terms changed to Net 45",
    "New rep: Priya, ext. 204",
    'Price list "2027" applies',
    "Moved to new warehouse",
)
_COMPONENT_NOTES = ("", "", "", "", "", "Cut to length", "Use torque 12 Nm", 'Substitute "B" grade OK',
                    "Kitted separately, see SOP-12")  # fmt: skip
_BOM_QTY_MILLI = (1000, 1000, 1000, 2000, 2000, 3000, 4000, 500, 250, 6000, 12000, 1000000)
_PUBLIC_NOTES = ("", "", "", "Deliver to dock 3", "Rush, customer waiting", 'Ref: quote "Q-2291"')
_PRIVATE_NOTES = (
    None,
    None,
    "",
    "Price negotiated by Sam",
    "Check invoice for freight, may be double-billed",
)
_ORDER_PREFIX = {"PURCHASE_ORDER": "PO-", "SALES_ORDER": "SO-", "TRANSFER_ORDER": "TO-"}


def _name_from(h: int) -> str:
    """Return a product name built from the bits of `h` (some with commas, quotes or non-ASCII)."""
    p = h & 15
    adj = _ADJ[(h >> 4) % 24]
    mat = _MAT[(h >> 10) % 20]
    noun = _NOUN[(h >> 16) % 40]
    if p < 10:
        return f"{adj} {mat} {noun}"
    size = _SIZE[(h >> 56) % 20]
    if p < 12:
        return f"{adj} {mat} {noun} {size}"
    if p < 14:
        return f"{noun}, {adj} {size}"
    if p == 14:
        return f'{noun}, "{adj}" {size}'
    return f'{mat} {noun}, {size} ("{adj}")'


def _cents(c: int, currency: bool) -> str:
    if currency:
        return f"${c // 100:,}.{c % 100:02d}"
    return f"{c // 100}.{c % 100:02d}"


def _milli(q: int) -> str:
    if q % 1000 == 0:
        return f"{q // 1000:,}"
    return f"{q / 1000:g}"


def _iso(dt: datetime) -> str:
    return dt.isoformat(timespec="seconds")


@dataclass(frozen=True)
class MutationEvent:
    """One `mutate()` call: rows hashing under `threshold` with `salt` change; `at` dates order edits."""

    version: int
    salt: int
    threshold: int
    at: datetime


def _hits(i: int, events: tuple[MutationEvent, ...]) -> list[int]:
    """Return the versions of the events that changed row `i` (usually none)."""
    return [e.version for e in events if mix64((e.salt + i * _G) & _M) < e.threshold]


def resolve_counts(rows: int, counts: dict[str, int] | None) -> dict[str, int]:
    """Return the per-type sizes: defaults from `rows`, overridden by `counts`; ValueError if invalid."""
    if rows < 0:
        raise ValueError("rows must be >= 0")
    out = {
        "inventory": rows,
        "vendors": max(3, rows // 20),
        "boms": max(2, rows // 10),
        "purchase_orders": max(5, rows // 10),
    }
    for key, value in (counts or {}).items():
        if key not in out:
            raise ValueError(f"unknown data type in counts: {key!r} (valid: {', '.join(DATA_TYPES)})")
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"counts[{key!r}] must be a non-negative int, got {value!r}")
        out[key] = value
    if out["boms"] > max(out["inventory"], MIN_SKU_SPACE):
        raise ValueError("counts['boms'] (BOM parents) cannot exceed the number of inventory SKUs")
    return out


class Dataset:
    """The generated data of one simulator: immutable configuration plus lazily built small caches."""

    def __init__(self, seed: int, account: str, counts: dict[str, int]):
        self.seed = seed
        self.account = account
        self.counts = dict(counts)
        self.sku_space = max(self.counts["inventory"], MIN_SKU_SPACE)
        self._vendor_names: list[str] | None = None
        self._vendor_codes: list[str] | None = None
        self._bom_lines: int | None = None
        self._bases = {t: stream_base(seed, t) for t in DATA_TYPES}
        # A multiplier coprime with the SKU space turns j -> (a*j + b) mod space into a permutation.
        self._bom_mult = next(p for p in (7919, 104729, 1299709, 15485863) if self.sku_space % p)

    # --- shared lookups ---------------------------------------------------------------------------------
    def base(self, label: str) -> int:
        """Return the stream key of `label` (a data type or any other named stream) for this seed."""
        b = self._bases.get(label)
        return b if b is not None else stream_base(self.seed, label)

    def keep_predicate(self, label: str, fraction: float) -> Callable[[int], bool]:
        """Return a deterministic predicate keeping about `fraction` of indices (for the drop_60 fault)."""
        base = stream_base(self.seed, "drop:" + label)
        thr = fraction_threshold(fraction)
        return lambda i: mix64((base + i * _G) & _M) < thr

    def sku(self, i: int) -> str:
        """Return the SKU of inventory index `i` (zero-padded to at least six digits)."""
        return f"SKU-{i:06d}"

    def product_name(self, i: int) -> str:
        """Return the description of inventory index `i`, identical to the inventory report's."""
        return _name_from(mix64((self._bases["inventory"] + i * _G) & _M))

    def vendor_names(self) -> list[str]:
        """Return all vendor names in report order (cached: vendors are few compared to products)."""
        if self._vendor_names is None:
            base = self._bases["vendors"]
            names, codes = [], []
            for j in range(self.counts["vendors"]):
                h = mix64((base + j * _G) & _M)
                prefix = _V_PREFIX[h % len(_V_PREFIX)]
                kind = _V_KIND[(h >> 8) % len(_V_KIND)]
                suffix = _V_SUFFIX[(h >> 16) % len(_V_SUFFIX)]
                # The index suffix makes the name unique however many vendors are generated.
                sep = ", " if (h >> 24) & 7 == 0 else " "
                names.append(f"{prefix} {kind}{sep}{suffix} {j:04d}")
                codes.append("".join(ch for ch in prefix.upper() if "A" <= ch <= "Z")[:3] or "VND")
            self._vendor_names, self._vendor_codes = names, codes
        return self._vendor_names

    def vendor_codes(self) -> list[str]:
        """Return the short code per vendor used to build supplier SKUs."""
        self.vendor_names()
        return self._vendor_codes  # type: ignore[return-value]

    @staticmethod
    def party_id(vendor_index: int) -> str:
        """Return the Finale partyId of the vendor at `vendor_index` in the vendor report."""
        return str(100000 + vendor_index)

    def bom_parent_index(self, j: int) -> int:
        """Return the inventory index of BOM parent `j` (an affine permutation, so parents are unique)."""
        s = self.sku_space
        return (self._bom_mult * j + self._bases["boms"] % s) % s

    def bom_components(self, j: int) -> list[int]:
        """Return the component inventory indices of BOM parent `j`: 1–6, unique, never the parent."""
        hp = mix64((self._bases["boms"] + j * _G) & _M)
        n = 1 + hp % 6
        parent = self.bom_parent_index(j)
        comps: list[int] = []
        t = 0
        while len(comps) < n:
            t += 1
            c = mix64((hp + t * _G) & _M) % self.sku_space
            if c != parent and c not in comps:
                comps.append(c)
        return comps

    def bom_lines(self) -> int:
        """Return the number of BOM data rows (lines) in the full report."""
        if self._bom_lines is None:
            base = self._bases["boms"]
            self._bom_lines = sum(1 + mix64((base + j * _G) & _M) % 6 for j in range(self.counts["boms"]))
        return self._bom_lines

    # --- inventory ----------------------------------------------------------------------------------------
    def inventory_rows(
        self, events: tuple[MutationEvent, ...] = (), keep: Callable[[int], bool] | None = None
    ) -> Iterator[list[str]]:
        """Yield inventory report data rows (lists of 20 strings) lazily."""
        base = self._bases["inventory"]
        vnames = self.vendor_names()
        vcodes = self.vendor_codes()
        nv = len(vnames)
        mix = mix64
        for i in range(self.counts["inventory"]):
            if keep is not None and not keep(i):
                continue
            # mix64 inlined three times: function calls are a measurable share of the per-row budget.
            x = (base + i * _G) & _M
            x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M
            x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M
            h1 = x ^ (x >> 31)
            x = h1 ^ _C1
            x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M
            x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M
            h2 = x ^ (x >> 31)
            x = h2 ^ _C2
            x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M
            x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M
            h3 = x ^ (x >> 31)
            scale = _STOCK_SCALE[(h2 >> 8) & 3]
            stock = None if (h2 & 31) == 0 else (h2 >> 12) % scale
            on_order = (h2 >> 32) % 2000 if (h2 >> 30) & 3 == 0 else 0
            reserved = (h2 >> 40) % ((stock or 0) // 4 + 1)
            rop = h3 % 500
            rvar = (h3 >> 9) % 50
            sales30 = (h3 >> 20) % (scale // 2 + 1)
            sales90 = sales30 + (h3 >> 36) % (2 * sales30 + 5)
            cost = (h3 >> 44) % 50000 + 25
            markup = 120 + (h1 >> 44) % 150
            if events:
                for k in _hits(i, events):
                    hm = mix(h1 ^ ((k * _C3) & _M))
                    # Offsets are >= 1 so a changed row always differs from every earlier version.
                    stock = (stock or 0) + 1 + hm % 500
                    on_order += (hm >> 10) % 50
                    sales30 += (hm >> 20) % 20
                    sales90 += (hm >> 20) % 20 + (hm >> 30) % 10
                    cost += 1 + (hm >> 40) % 300
            onhand = stock or 0
            qto = max(0, rop + rvar - onhand - on_order)
            currency = (h1 >> 40) % 10 == 0
            j = (h2 >> 50) % nv if nv else -1
            yield [
                f"SKU-{i:06d}",
                _name_from(h1),
                _CATEGORIES[(h1 >> 22) % 12],
                "Inactive" if (h1 >> 26) & 15 == 0 else "Active",
                "" if stock is None else f"{stock:,}",
                "" if (h2 >> 34) & 15 == 0 else f"{on_order:,}",
                f"{reserved:,}",
                f"{rop:,}",
                f"{rvar:,}",
                f"{qto:,}",
                _MOQ[(h3 >> 15) % 9],
                f"{sales30:,}",
                f"{sales90:,}",
                _cents(cost, currency),
                _cents(cost * markup // 100, currency),
                _LOCATIONS[(h1 >> 28) % 6],
                "" if (h1 >> 31) & 7 == 0 else f"{'ABCDEFGH'[(h1 >> 34) & 7]}-{(h1 >> 37) % 40 + 1:02d}",
                "" if j < 0 or (h3 >> 60) == 0 else f"{vcodes[j]}-{(h3 >> 3) % 100000:05d}",
                "" if j < 0 or (h2 >> 45) & 31 == 0 else vnames[j],
                _LOT[(h1 >> 52) & 7],
            ]

    # --- vendors ------------------------------------------------------------------------------------------
    def vendor_rows(
        self, events: tuple[MutationEvent, ...] = (), keep: Callable[[int], bool] | None = None
    ) -> Iterator[list[str]]:
        """Yield vendor report rows lazily, with JUNK_VENDOR_ROWS non-vendor rows mixed in."""
        base = self._bases["vendors"]
        names = self.vendor_names()
        n = len(names)
        junk_at = ((n // 3, 0), ((2 * n) // 3, 1))
        for j in range(n + 1):
            # Junk rows sit before vendor j; with very few vendors both land at the same place.
            for pos, kind in junk_at:
                if pos == j:
                    yield self._junk_vendor_row(kind)
            if j == n:
                break
            if keep is not None and not keep(j):
                continue
            h = mix64((base + j * _G) & _M)
            h2 = mix64(h ^ _C1)
            name = names[j]
            slug = "".join(ch for ch in name.lower() if "a" <= ch <= "z" or "0" <= ch <= "9")[:24]
            city, state, postal, country, phone_prefix = _PLACES[(h2 >> 4) % len(_PLACES)]
            last4 = (h2 >> 20) % 10000
            note = _V_NOTES[(h2 >> 36) % len(_V_NOTES)]
            if events:
                for k in _hits(j, events):
                    hm = mix64(h ^ ((k * _C3) & _M))
                    last4 = (last4 + 1 + hm % 9998) % 10000
                    note = f"{_V_NOTES_CHANGED[(hm >> 20) % len(_V_NOTES_CHANGED)]} (rev. {k})"
            street = f"{100 + (h2 >> 8) % 9900} {_STREETS[(h2 >> 24) % len(_STREETS)]}"
            if (h2 >> 28) & 3 == 0:
                street += f", Suite {(h2 >> 30) % 400 + 100}"
            yield [
                name,
                f"orders@{slug}.example.com",
                f"ap@{slug}.example.com" if (h2 >> 40) % 3 == 0 else "",
                f"{phone_prefix}555-{last4:04d}",
                street,
                city,
                state,
                f"{postal}{(h2 >> 44) % 100:02d}"
                if not postal.endswith(" ")
                else f"{postal}1A{(h2 >> 44) % 10}",
                country,
                "" if (h2 >> 52) % 5 == 0 else f"https://www.{slug}.example.com",
                "" if (h2 >> 56) % 7 == 0 else str(3 + (h2 >> 58) % 40),
                note,
            ]

    @staticmethod
    def _junk_vendor_row(kind: int) -> list[str]:
        if kind == 0:
            return ["--", "", "", "", "", "", "", "", "", "", "", ""]
        # A blank name with the rest filled in: the shape of a row whose values shifted left.
        return [
            "", "billing@unknown.example.com", "", "+1 (555) 555-0100", "1 Nowhere Rd", "Springfield", "IL",
            "62701", "United States", "", "", "imported from old system",
        ]  # fmt: skip

    # --- BOMs ---------------------------------------------------------------------------------------------
    def bom_rows(
        self, events: tuple[MutationEvent, ...] = (), keep: Callable[[int], bool] | None = None
    ) -> Iterator[list[str]]:
        """Yield BOM rows: a parent's first line carries the parent cells; later lines leave them blank."""
        base = self._bases["boms"]
        inv_base = self._bases["inventory"]
        for j in range(self.counts["boms"]):
            if keep is not None and not keep(j):
                continue
            hp = mix64((base + j * _G) & _M)
            parent = self.bom_parent_index(j)
            comps = self.bom_components(j)
            head = [f"SKU-{parent:06d}", self.product_name(parent), f"{(hp >> 8) % 400:,}"]
            for line, c in enumerate(comps):
                hl = mix64((hp + (line + 1) * _C1) & _M)
                hc = mix64((inv_base + c * _G) & _M)
                qty = _BOM_QTY_MILLI[hl % len(_BOM_QTY_MILLI)]
                if events:
                    for k in _hits(j * 8 + line, events):
                        qty += 1000 * (1 + mix64(hl ^ ((k * _C3) & _M)) % 5)
                cost = (hl >> 20) % 20000 + 10
                yield (head if line == 0 else ["", "", ""]) + [
                    _milli(qty),
                    f"SKU-{c:06d}",
                    _name_from(hc),
                    f"{(hl >> 8) % 5000:,}",
                    _COMPONENT_NOTES[(hl >> 36) % len(_COMPONENT_NOTES)],
                    _cents(cost, (hl >> 40) % 4 == 0),
                ]

    # --- orders -------------------------------------------------------------------------------------------
    def order_head(self, i: int, events: tuple[MutationEvent, ...] = ()) -> tuple:
        """Return the scalar fields and role list of order `i`, in ORDER_FIELDS order (without the items)."""
        h1 = mix64((self._bases["purchase_orders"] + i * _G) & _M)
        h2 = mix64(h1 ^ _C1)
        t = h1 % 100
        otype = ORDER_TYPES[0] if t < 60 else ORDER_TYPES[1] if t < 85 else ORDER_TYPES[2]
        s = (h1 >> 8) % 100
        status = 0 if s < 15 else 1 if s < 45 else 2 if s < 90 else 3
        order_date = ANCHOR - timedelta(minutes=(h1 >> 16) % (365 * 24 * 60))
        updated = order_date + timedelta(minutes=h2 % ((ANCHOR - order_date) // timedelta(minutes=1) + 1))
        hits = _hits(i, events) if events else ()
        if hits:
            status = (status + 1 + (len(hits) - 1) % 3) % 4
            updated = max(e.at for e in events if e.version in hits)
        receive = None
        if status == 2 and otype != "SALES_ORDER":
            receive = _iso(order_date + timedelta(days=2 + (h2 >> 20) % 30, minutes=(h2 >> 30) % 600))
        acct = self.account
        oid = f"{_ORDER_PREFIX[otype]}{10001 + i}"
        facility = f"/{acct}/api/facility/{10000 + (h2 >> 40) % 3}"
        other = f"/{acct}/api/facility/{10003 + (h2 >> 44) % 2}"
        nv = self.counts["vendors"]
        if otype == "PURCHASE_ORDER":
            origin, dest = None, facility
            roles = [{"roleTypeId": "SUPPLIER", "partyId": self.party_id((h2 >> 48) % nv)}] if nv else []
        elif otype == "SALES_ORDER":
            origin, dest = facility, None
            roles = [{"roleTypeId": "CUSTOMER", "partyId": str(200000 + (h2 >> 48) % 5000)}]
        else:
            origin, dest = facility, other
            roles = []
        return (
            oid,
            f"/{acct}/api/order/{oid}",
            otype,
            ORDER_STATUSES[status],
            _iso(order_date),
            receive,
            _iso(updated),
            origin,
            dest,
            _PUBLIC_NOTES[(h2 >> 52) % len(_PUBLIC_NOTES)],
            _PRIVATE_NOTES[(h2 >> 56) % len(_PRIVATE_NOTES)],
            roles,
        )

    def order_items(self, i: int, events: tuple[MutationEvent, ...] = ()) -> list[dict]:
        """Return the orderItemList of order `i` (1–8 lines of distinct inventory SKUs)."""
        h1 = mix64((self._bases["purchase_orders"] + i * _G) & _M)
        h3 = mix64(h1 ^ _C2)
        t = h1 % 100
        otype = ORDER_TYPES[0] if t < 60 else ORDER_TYPES[1] if t < 85 else ORDER_TYPES[2]
        oid = f"{_ORDER_PREFIX[otype]}{10001 + i}"
        hits = _hits(i, events) if events else ()
        acct = self.account
        n = 1 + h3 % 8
        seen: set[int] = set()
        items = []
        t = 0
        while len(items) < n:
            t += 1
            hl = mix64((h3 + t * _G) & _M)
            p = hl % self.sku_space
            if p in seen:
                continue
            seen.add(p)
            qty = 1 + (hl >> 20) % 200
            for k in hits:
                qty += 1 + mix64(hl ^ ((k * _C3) & _M)) % 10
            sku = f"SKU-{p:06d}"
            items.append(
                {
                    "orderItemUrl": f"/{acct}/api/order/{oid}/orderItem/{len(items) + 1}",
                    "productId": sku,
                    "productUrl": f"/{acct}/api/product/{sku}",
                    "quantity": qty,
                    "unitPrice": ((hl >> 32) % 50000 + 25) / 100,
                }
            )
        return items


# --- body writers ------------------------------------------------------------------------------------------
def _cut_text(text: str) -> str:
    """Return a prefix of a rendered CSV row that ends inside it: inside a quoted field when it has one, else
    before its middle comma (so the row has fewer fields)."""
    q = text.find('"')
    if 0 <= q < len(text) - 2:
        return text[: q + 2]
    commas = [k for k, ch in enumerate(text) if ch == ","]
    if commas:
        return text[: commas[len(commas) // 2]]
    return text[: max(1, len(text) // 2)]


def csv_chunks(
    preamble: list[list[str]],
    header: list[str],
    rows: Iterable[list[str]],
    *,
    drop_first_column: bool = False,
    cut_at: int | None = None,
) -> Iterator[str]:
    """Yield the CSV body as ~64 KiB text pieces: BOM, preamble, header, rows (CRLF, minimal quoting).

    With `cut_at`, the body stops inside a data row at or shortly after that index (preferring a row with a
    quoted field) and the row is left unfinished.
    """
    buf = io.StringIO()
    buf.write("\ufeff")
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerows(preamble)
    writer.writerow(header[1:] if drop_first_column else header)
    if cut_at is None:
        batch: list[list[str]] = []
        append = batch.append
        for row in rows:
            append(row[1:] if drop_first_column else row)
            if len(batch) >= 256:
                writer.writerows(batch)
                batch.clear()
                if buf.tell() >= CHUNK_CHARS:
                    yield buf.getvalue()
                    buf.seek(0)
                    buf.truncate()
        writer.writerows(batch)
        yield buf.getvalue()
        return

    it = iter(rows)
    row = next(it, None)
    index = 0
    if row is None:
        # No data rows: cut the header itself, the only row there is.
        text = buf.getvalue()
        head_start = text.rfind("\r\n", 0, len(text) - 2) + 2
        yield text[:head_start] + _cut_text(text[head_start:-2])
        return
    row_buf = io.StringIO()
    row_writer = csv.writer(row_buf, lineterminator="")
    while row is not None:
        nxt = next(it, None)
        if drop_first_column:
            row = row[1:]
        if index >= cut_at:
            row_buf.seek(0)
            row_buf.truncate()
            row_writer.writerow(row)
            text = row_buf.getvalue()
            if '"' in text or nxt is None or index >= cut_at + 50:
                buf.write(_cut_text(text))
                break
        writer.writerow(row)
        if buf.tell() >= CHUNK_CHARS:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
        row = nxt
        index += 1
    yield buf.getvalue()


def orders_json_chunks(
    ds: Dataset,
    indices: Iterable[int],
    events: tuple[MutationEvent, ...] = (),
    *,
    drop_key: str | None = None,
    short_field: str | None = None,
    cut: bool = False,
    empty: bool = False,
    overrides: dict[int, dict[str, object]] | None = None,
) -> Iterator[str]:
    """Yield the column-major order collection as JSON text pieces in one pass over the orders.

    Column-major output needs every order before the second field can start, so the first array streams
    straight out while the other arrays are spooled (memory up to 1 MiB each, then a temporary file).
    `drop_key` omits a field, `short_field` leaves that field's array one element short, `cut` stops halfway
    through the last array (the text is then not valid JSON), `empty` gives every array zero elements,
    `overrides` maps an order index to field values that replace the generated ones (NaN is written as the
    bare `NaN` Python's json emits).
    """
    overrides = overrides or {}
    dumps = json.dumps
    fields = [f for f in ORDER_FIELDS if f != drop_key]
    columns = [ORDER_FIELDS.index(f) for f in fields]
    last = len(fields) - 1
    spools = [tempfile.SpooledTemporaryFile(max_size=1 << 20, mode="w+", encoding="utf-8") for _ in fields]
    pending: list[list[str]] = [[] for _ in fields]
    written = [0] * len(fields)  # elements per field
    sizes = [0] * len(fields)  # characters per spool, to find the middle for `cut`
    short = fields.index(short_field) if short_field in fields else -1
    try:
        yield "{" + dumps(fields[0]) + ": ["
        for i in () if empty else indices:
            head = ds.order_head(i, events)
            items = None
            replaced = overrides.get(i)
            for f, col in enumerate(columns):
                if f == short:
                    # Leaving out this field's first element misaligns the array with all the others.
                    short = -1
                    continue
                if replaced is not None and fields[f] in replaced:
                    text = dumps(replaced[fields[f]])
                elif col == 12:
                    if items is None:
                        items = ds.order_items(i, events)
                    text = dumps(items)
                else:
                    text = dumps(head[col])
                bucket = pending[f]
                bucket.append(", " + text if written[f] else text)
                written[f] += 1
                if len(bucket) >= 256:
                    chunk = "".join(bucket)
                    bucket.clear()
                    if f == 0:
                        yield chunk
                    else:
                        spools[f].write(chunk)
                        sizes[f] += len(chunk)
        if short >= 0 and not empty:
            # No order to leave out: an extra element makes the array unequal all the same.
            pending[short].append(", null" if written[short] else "null")
        yield "".join(pending[0]) + "]"
        for f in range(1, len(fields)):
            spool = spools[f]
            chunk = "".join(pending[f])
            spool.write(chunk)
            sizes[f] += len(chunk)
            spool.seek(0)
            yield ", " + dumps(fields[f]) + ": ["
            if cut and f == last:
                remaining = sizes[f] // 2
                while remaining > 0:
                    piece = spool.read(min(CHUNK_CHARS, remaining))
                    if not piece:
                        break
                    remaining -= len(piece)
                    yield piece
                return
            while piece := spool.read(CHUNK_CHARS):
                yield piece
            yield "]"
        yield "}"
    finally:
        for spool in spools:
            spool.close()


# --- a decompression bomb ---------------------------------------------------------------------------------
BOMB_INFLATED_BYTES = 1 << 30


@functools.lru_cache(maxsize=8)
def gzip_bomb(prefix: bytes, size: int = BOMB_INFLATED_BYTES, fill: bytes = b"A") -> bytes:
    """Return a gzip member (~1 MB for 1 GiB) that inflates to `prefix` followed by `fill` up to `size`
    bytes, with no line break after the prefix: one huge line.

    Compressing a GiB takes seconds; after a full flush deflate forgets its history, so one flushed MiB
    block compresses to the same bytes every time and is simply repeated (the CRC is still computed)."""
    block = fill * (1 << 20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    parts = [b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff", compressor.compress(prefix)]
    parts.append(compressor.flush(zlib.Z_FULL_FLUSH))
    repeated = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    count, rest = divmod(max(0, size - len(prefix)), len(block))
    parts.append(repeated * count)
    parts.append(compressor.compress(block[:rest]) + compressor.flush(zlib.Z_FINISH))
    crc = zlib.crc32(prefix)
    for _ in range(count):
        crc = zlib.crc32(block, crc)
    crc = zlib.crc32(block[:rest], crc)
    parts.append(struct.pack("<II", crc, (len(prefix) + count * len(block) + rest) & 0xFFFFFFFF))
    return b"".join(parts)
