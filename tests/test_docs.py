"""The documentation says what the code does (issue 12, item 12): the README's configuration table names every
environment variable the settings read (and nothing they don't), docs/finale-reports.md has the columns each
data type reads with every spelling it accepts, and the README's simulator section lists every control
endpoint and fault kind.

The column tables in docs/finale-reports.md are generated here, from the data type modules. After changing a
data type, rewrite them with

    FINALESYNC_WRITE_DOCS=1 .venv/bin/pytest tests/test_docs.py
"""

from __future__ import annotations

import ast
import os
import re

import pytest
from django.db import models

from finalesync.datatypes import registry
from finalesync.datatypes.base import ReportDataType
from finalesync.datatypes.purchase_orders import FINALE_FIELDS, REQUIRED_FIELDS
from finalesync.simulator.server import FAULT_DATA_TYPES, FAULT_KINDS

from .conftest import ROOT

README = ROOT / "README.md"
REPORTS_DOC = ROOT / "docs" / "finale-reports.md"
SETTINGS = ROOT / "finalesync" / "settings.py"
PLACEHOLDER = "<TYPE>"


# --- the README's configuration table ------------------------------------------------------------------------
def section(text: str, title: str) -> str:
    """The text of a `## title` (or `### title`) section, up to the next heading of the same or a higher level."""
    match = re.search(rf"^(#+) {re.escape(title)}\s*$", text, re.M)
    assert match, f"README has no section {title!r}"
    level = len(match.group(1))
    rest = text[match.end() :]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.M)
    return rest[: end.start()] if end else rest


def documented_variables() -> set[str]:
    """Backticked names in the first cell of each row of the Configuration section's table."""
    names = set()
    for line in section(README.read_text(), "Configuration").splitlines():
        if line.startswith("|") and not re.match(r"^\|\s*-", line):
            first = line.split("|")[1]
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]*(?:<[A-Z]+>)?)`", first))
    names.discard("TYPE")
    return names


def _name(node: ast.AST, line: int) -> str:
    """The variable name an env read asks for: a literal, or a pattern for an f-string/concatenation."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else PLACEHOLDER for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _name(node.left, line) + _name(node.right, line)
    if isinstance(node, ast.Name | ast.Attribute | ast.Call):
        return PLACEHOLDER
    raise AssertionError(f"finalesync/settings.py:{line}: cannot tell which variable is read")


def _is_env_read(node: ast.AST) -> ast.AST | None:
    """The name argument of `env("X")`, `env.<kind>("X")`, `os.environ.get("X")`, `os.getenv("X")`,
    `os.environ["X"]`; None for anything else."""
    if isinstance(node, ast.Call) and node.args:
        func = node.func
        if isinstance(func, ast.Name) and func.id == "env":
            return node.args[0]
        if isinstance(func, ast.Attribute):
            owner = ast.unparse(func.value)
            if (
                owner == "env"
                or (owner == "os.environ" and func.attr == "get")
                or ast.unparse(func) == "os.getenv"
            ):
                return node.args[0]
    if isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
        return node.slice
    return None


def variables_read(source: str | None = None) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(source if source is not None else SETTINGS.read_text())):
        argument = _is_env_read(node)
        if argument is not None:
            names.add(_name(argument, node.lineno))
        # A family picked out of the environment by prefix: `name.startswith("FINALE_REPORT_URL_")`.
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "startswith"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and re.fullmatch(r"[A-Z][A-Z0-9_]*_", str(node.args[0].value))
        ):
            names.add(node.args[0].value + PLACEHOLDER)
    return names


def _pattern(name: str) -> re.Pattern:
    return re.compile(
        "^" + re.sub(r"<[A-Z]+>", "[A-Z0-9_]+", re.escape(name).replace(r"\<", "<").replace(r"\>", ">")) + "$"
    )


def covered(name: str, by: set[str]) -> bool:
    """`name` is in `by`, literally or through a `<TYPE>` pattern (either side may be the pattern)."""
    if name in by:
        return True
    if PLACEHOLDER in name or "<" in name:
        prefix = name.split("<", 1)[0]
        return any(other.startswith(prefix) for other in by)
    return any("<" in other and _pattern(other).match(name) for other in by)


def test_the_parser_sees_the_reads_it_must_see():
    read = variables_read()
    assert {"DATABASE_URL", "SECRET_KEY", "EMAIL_URL", "FINALE_MAX_LINE_BYTES", "TIME_ZONE"} <= read
    assert any(name.startswith("FINALE_REPORT_URL_") for name in read)
    assert covered("FINALE_REPORT_URL_VENDORS", {"FINALE_REPORT_URL_<TYPE>"})
    assert covered("FINALE_REPORT_URL_<TYPE>", {"FINALE_REPORT_URL_INVENTORY"})
    assert not covered("FINALE_MAX_COLUMNS", {"FINALE_REPORT_URL_<TYPE>"})


def test_the_parser_sees_a_family_of_variables_however_it_is_read():
    comprehension = 'URLS = {n: env.str(f"FINALE_REPORT_URL_{n.upper()}", default="") for n in NAMES}'
    assert variables_read(comprehension) == {"FINALE_REPORT_URL_<TYPE>"}
    scan = 'URLS = {k[18:].lower(): v for k, v in os.environ.items() if k.startswith("FINALE_REPORT_URL_")}'
    assert variables_read(scan) == {"FINALE_REPORT_URL_<TYPE>"}
    assert variables_read('X = os.environ["LOG_LEVEL"]; Y = os.getenv("A_B", "1")') == {"LOG_LEVEL", "A_B"}


def test_readme_configuration_table_names_every_variable_the_settings_read():
    read, documented = variables_read(), documented_variables()
    assert sorted(n for n in read if not covered(n, documented)) == [], "add these to the README's table"
    assert sorted(n for n in documented if not covered(n, read)) == [], "the settings do not read these"


def test_report_urls_are_documented_as_one_pattern():
    documented = documented_variables()
    assert "FINALE_REPORT_URL_<TYPE>" in documented
    assert not {"FINALE_REPORT_URL_INVENTORY", "FINALE_REPORT_URL_VENDORS"} & documented


# --- docs/finale-reports.md ---------------------------------------------------------------------------------
def value_rule(field: models.Field) -> str:
    if isinstance(field, models.DecimalField):
        return f"number (up to {field.max_digits - field.decimal_places} digits before the point, {field.decimal_places} after)"
    if isinstance(field, models.CharField):
        return f"text, at most {field.max_length} characters"
    if isinstance(field, models.TextField):
        return "text"
    if isinstance(field, models.DateTimeField):
        return "date and time (ISO 8601; no offset = UTC)"
    if isinstance(field, models.IntegerField):
        return "whole number"
    if isinstance(field, models.JSONField):
        return "JSON, as Finale sent it"
    return field.get_internal_type()


def report_table(datatype: ReportDataType) -> str:
    rows = [
        "| column in finalesync | spellings accepted in the report | needed | value |",
        "|---|---|---|---|",
    ]
    for column in datatype.columns:
        field = datatype.model._meta.get_field(column.field)
        if column.field in datatype.key_columns:
            needed = "**required** (key)"
        elif column.field in datatype.required:
            needed = "**required**"
        else:
            needed = "optional"
        spellings = ", ".join(f"`{alias}`" for alias in column.aliases)
        rows.append(f"| `{column.field}` | {spellings} | {needed} | {value_rule(field)} |")
    return "\n".join(rows)


def orders_table() -> str:
    datatype = registry.get("purchase_orders")
    rows = ["| column in finalesync | from Finale's order field | value |", "|---|---|---|"]
    for name in datatype.fields:
        field = datatype.model._meta.get_field(name)
        rows.append(f"| `{name}` | {FINALE_FIELDS[name]} | {value_rule(field)} |")
    return "\n".join(rows)


def generated_blocks() -> dict[str, str]:
    blocks = {
        name: report_table(datatype)
        for name, datatype in registry.DATATYPES.items()
        if isinstance(datatype, ReportDataType)
    }
    blocks["purchase_orders"] = orders_table()
    return blocks


BLOCK = re.compile(r"(<!-- columns:(\w+) -->\n)(.*?)(\n<!-- /columns:\2 -->)", re.S)


def test_finale_reports_doc_has_the_column_tables_the_code_reads():
    text = REPORTS_DOC.read_text()
    wanted = generated_blocks()
    if os.environ.get("FINALESYNC_WRITE_DOCS"):
        text = BLOCK.sub(lambda m: m.group(1) + wanted.get(m.group(2), m.group(3)) + m.group(4), text)
        REPORTS_DOC.write_text(text)
    found = {m.group(2): m.group(3) for m in BLOCK.finditer(text)}
    assert sorted(found) == sorted(wanted), "one generated table per data type"
    for name, table in wanted.items():
        assert found[name] == table, (
            f"the {name} table is out of date: FINALESYNC_WRITE_DOCS=1 pytest {__file__}"
        )


@pytest.mark.parametrize("name", [n for n, d in registry.DATATYPES.items() if isinstance(d, ReportDataType)])
def test_every_accepted_spelling_and_required_column_is_in_the_doc(name):
    datatype = registry.get(name)
    text = REPORTS_DOC.read_text()
    for column in datatype.columns:
        for alias in column.aliases:
            assert f"`{alias}`" in text, alias
    for required in (*datatype.key_columns, *datatype.required):
        assert f"`{required}`" in text


def test_the_orders_section_names_the_fields_finalesync_needs():
    text = REPORTS_DOC.read_text()
    for name in REQUIRED_FIELDS:
        assert f"`{name}`" in text
    assert set(FINALE_FIELDS) == set(registry.get("purchase_orders").fields)


def test_the_orders_field_map_is_what_the_parser_reads():
    """FINALE_FIELDS (the doc's source) against order_values: each plain field lands where the map says."""
    datatype = registry.get("purchase_orders")
    fields = list(datatype.fields)
    for name, source in FINALE_FIELDS.items():
        finale = source.strip("`").split("`")[0]
        if finale.endswith("Date") or finale in ("orderRoleList", "orderItemList"):
            continue
        order = {"orderId": "PO-1", "orderTypeId": "PURCHASE_ORDER", "statusId": "ORDER_CREATED"}
        order[finale] = "marker-value"
        values = datatype.order_values(order)
        assert values[fields.index(name)] == "marker-value", name


def test_the_doc_explains_unknown_columns_values_and_building_the_report():
    text = REPORTS_DOC.read_text()
    for phrase in ("extra", "pivotTableStream", "case", "FINALE_REPORT_URL_", "SYNC_MAX_BAD_ROW_RATIO"):
        assert phrase in text, phrase


# --- the README's simulator section ---------------------------------------------------------------------------
def test_readme_simulator_section_lists_every_control_endpoint_and_fault():
    text = section(README.read_text(), "The Finale simulator")
    for endpoint in (
        "GET /_sim/state",
        "POST /_sim/faults",
        "POST /_sim/mutate",
        "POST /_sim/spellings",
        "POST /_sim/reset",
    ):
        assert endpoint in text, endpoint
    for kind in FAULT_KINDS:
        assert f"`{kind}`" in text, kind
    for kind, types in FAULT_DATA_TYPES.items():
        only = " and ".join(types)
        assert re.search(rf"`{kind}`[^\n]*\({only} only\)", text), f"{kind} applies only to {only}"
