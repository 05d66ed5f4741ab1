"""Checking and cleaning values a column at a time, against the model field they land in.

Every value is checked before it is staged, so the database never rejects a staged row and SQLite never
stores what PostgreSQL would refuse. The checks come from the model fields themselves (`rule_for(field)`):

- text (CharField, TextField): surrounding whitespace trimmed; no longer than `max_length`;
- numbers (DecimalField): Finale's spellings ('1,234', '$12.50', '(3.5)', '€ 2') to canonical text, ASCII
  digits only, rounded half away from zero to the column's scale (as PostgreSQL does), and no more integer
  digits than the column holds;
- a NUL byte anywhere in a row (keys and unknown columns included) makes the whole row bad.

A bad value makes its row a bad row: counted, shown with its reason, and its live row is kept. The reason
text is computed only for the few rows shown as examples; everything else is a vectorised mask.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import pyarrow as pa
import pyarrow.compute as pc
from django.db import models


class RowError(ValueError):
    """Raised by a per-row parser (the order collection) for one bad row; the sync counts it and goes on."""


NUL = "\x00"
_NOISE = r"[$€£ ,\x{00a0}]"
_NOISE_PY = str.maketrans("", "", "$€£ ,\u00a0")
_NUMBER = r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$"
_NUMBER_PY = re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$", re.ASCII)


class TextRule:
    """Text: trimmed, and at most `max_length` characters (CharField)."""

    def __init__(self, max_length: int | None, *, trim: bool = True):
        self.max_length = max_length
        self.trim = trim

    def clean(self, values: pa.Array) -> tuple[pa.Array, pa.Array | None]:
        """(cleaned values, mask of bad values or None when all are good)."""
        if self.trim:
            values = pc.utf8_trim_whitespace(values)
        if self.max_length is None:
            return values, None
        bad = pc.greater(pc.utf8_length(values), self.max_length)
        return values, bad if pc.any(bad).as_py() else None

    def reason(self, raw: str) -> str:
        text = raw.strip() if self.trim else raw
        return f"longer than {self.max_length} characters ({len(text):,})"


class DecimalRule:
    """A number kept as canonical text (no float rounding creeps in), checked against max_digits/places."""

    def __init__(self, max_digits: int, decimal_places: int):
        self.places = decimal_places
        self.max_int_digits = max_digits - decimal_places
        self.quantum = Decimal(1).scaleb(-decimal_places)
        # Plain digits that already fit are the common case: one regex pass settles them.
        self._plain = rf"^[0-9]{{1,{self.max_int_digits}}}(?:\.[0-9]{{0,{decimal_places}}})?$"

    def clean(self, values: pa.Array) -> tuple[pa.Array, pa.Array | None]:
        plain = pc.match_substring_regex(values, self._plain)
        if pc.all(plain).as_py():
            return values, None
        todo = pc.invert(plain)
        odd = pc.filter(values, todo)
        cleaned = self._clean_odd(odd)
        valid = pc.is_valid(cleaned)
        empty = pc.equal(pc.utf8_trim_whitespace(odd), "")
        bad_odd = pc.and_(pc.invert(valid), pc.invert(empty))
        out = pc.replace_with_mask(values, todo, pc.if_else(valid, cleaned, pa.scalar(None, pa.string())))
        bad = pc.replace_with_mask(pa.array([False] * len(values), pa.bool_()), todo, bad_odd)
        return out, bad if pc.any(bad).as_py() else None

    def _clean_odd(self, values: pa.Array) -> pa.Array:
        """Cleaned canonical text, or null where the value is empty or not a number that fits. Most odd
        values carry thousands separators or currency signs; the rarer cases (parentheses, long numbers, many
        decimals) cost a pass only in a batch that has them."""
        text = pc.utf8_trim_whitespace(values)
        negative = pc.and_(pc.starts_with(text, "("), pc.ends_with(text, ")"))
        text = pc.utf8_trim(text, "()")
        text = pc.replace_substring_regex(text, _NOISE, "")
        is_number = pc.match_substring_regex(text, _NUMBER)
        if pc.any(negative).as_py():
            flip = pc.and_(negative, pc.invert(pc.starts_with(text, "-")))
            text = pc.if_else(flip, pc.binary_join_element_wise("-", text, ""), text)
        fits = is_number
        if (pc.max(pc.utf8_length(text)).as_py() or 0) > self.max_int_digits:
            integer = pc.replace_substring_regex(text, r"^[-+]?0*|\..*$", "")
            fits = pc.and_(is_number, pc.less_equal(pc.utf8_length(integer), self.max_int_digits))
        result = pc.if_else(fits, text, pa.scalar(None, pa.string()))
        # More decimals than the column keeps: round like PostgreSQL would (rare; done per value).
        long = pc.and_(fits, pc.match_substring_regex(text, rf"\.[0-9]{{{self.places + 1},}}$"))
        if pc.any(long).as_py():
            rounded = [
                self._round(v) if flag else v
                for v, flag in zip(result.to_pylist(), long.to_pylist(), strict=True)
            ]
            result = pa.array(rounded, pa.string())
        return result

    def _round(self, text: str) -> str | None:
        value = Decimal(text).quantize(self.quantum, rounding=ROUND_HALF_UP)
        digits = len(str(abs(value)).split(".")[0].lstrip("0"))
        return None if digits > self.max_int_digits else str(value)

    def parse(self, value: str) -> str | None:
        """One value (the order collection's per-row path); raises RowError like the batch path refuses."""
        out, bad = self.clean(pa.array([value], pa.string()))
        if bad is not None:
            raise RowError(self.reason(value))
        return out[0].as_py()

    def reason(self, raw: str) -> str:
        value = raw.strip()
        cleaned = value.strip("()").translate(_NOISE_PY)
        if not _NUMBER_PY.match(cleaned):
            return f"not a number: {value[:40]!r}"
        return f"number too large: {value[:40]!r}"


def rule_for(field: models.Field, *, trim: bool = True):
    """The check of a model field's values, or None for a kind of field the data type fills itself."""
    if isinstance(field, models.DecimalField):
        return DecimalRule(field.max_digits, field.decimal_places)
    if isinstance(field, models.CharField):
        return TextRule(field.max_length, trim=trim)
    if isinstance(field, models.TextField):
        return TextRule(None, trim=trim)
    return None


def has_nul(values: pa.Array) -> pa.Array:
    return pc.match_substring(values, NUL)


def canonical_number(value) -> str | None:
    """A number computed in Python (an order total) as the canonical text the batch path produces."""
    if value is None:
        return None
    try:
        return str(Decimal(value))
    except (InvalidOperation, ValueError, TypeError):
        raise RowError(f"not a number: {str(value)[:40]!r}") from None
