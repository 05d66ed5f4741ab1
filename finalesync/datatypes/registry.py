"""Finds the data type modules in this package. Each module exposes `DATATYPE`; nothing here lists them."""

from __future__ import annotations

import importlib
import pkgutil

from .base import DataType

_SKIP = {"base", "registry"}


def _discover() -> dict[str, DataType]:
    found: dict[str, DataType] = {}
    package = importlib.import_module(__package__)
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.name in _SKIP or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__package__}.{info.name}")
        datatype = getattr(module, "DATATYPE", None)
        if isinstance(datatype, DataType):
            found[datatype.name] = datatype
    return found


DATATYPES: dict[str, DataType] = _discover()
# Each type says where it goes in lists (`position`; the order operators know from the original system).
NAMES: list[str] = sorted(DATATYPES, key=lambda name: (DATATYPES[name].position, name))


def get(name: str) -> DataType:
    """Return the data type called `name`; raise KeyError with the valid names when there is none."""
    try:
        return DATATYPES[name]
    except KeyError:
        raise KeyError(f"unknown data type {name!r}; known: {', '.join(NAMES)}") from None
