"""Frames (or plain rows) out as CSV and JSON that are safe to open in a spreadsheet.

Text from an export (a project name, a line item) could start with ``=`` and run as a formula
when finance opens the download. Text cells that could be read as a formula get a leading
apostrophe (OWASP's advice); numbers stay numbers, so a credit of -12.50 still sums.

Every function takes a pandas frame or ``Rows`` (column names and row tuples): a CLI report
built from SQL rows prints without importing pandas, which alone takes most of the 0.5 s a
report may take (issue #9).
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from numbers import Number
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import pandas as pd


class Rows(NamedTuple):
    """A table as plain Python values: what a report made in SQL hands to ``emit``."""

    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]


def as_rows(data: pd.DataFrame | Rows) -> Rows:
    """``data`` as ``Rows`` (a frame's cells as they are: numpy scalars stay)."""
    if isinstance(data, Rows):
        return data
    return Rows(list(data.columns), list(data.itertuples(index=False, name=None)))


def _missing(value: Any) -> bool:
    """None, or a float NaN (pandas' missing value), without importing pandas."""
    return value is None or (isinstance(value, float) and value != value)

# OWASP CSV injection triggers, with their full-width twins (Excel folds those too).
_TRIGGERS = tuple("=+-@\t\r\n") + ("\uff1d", "\uff0b", "\uff0d", "\uff20")


def neutralise(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula gets a leading apostrophe.

    >>> neutralise("=HYPERLINK(1)"), neutralise(-12.5), neutralise("gpt-4o")
    ("'=HYPERLINK(1)", -12.5, 'gpt-4o')
    """
    if isinstance(value, str) and value.startswith(_TRIGGERS):
        return "'" + value
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime | date):
        return value.isoformat()
    if _missing(value):
        return ""
    return value.item() if hasattr(value, "item") else value


def to_csv(data: pd.DataFrame | Rows) -> str:
    """CSV text with formula-looking text cells neutralised and money written in full."""
    table = as_rows(data)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.columns)
    writer.writerows([neutralise(v) if isinstance(v, str) else _plain(v) for v in row]
                     for row in table.rows)
    return buffer.getvalue()


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(round(value, 6))
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    if _missing(value):
        return None
    return value


def records(data: pd.DataFrame | Rows) -> list[dict[str, Any]]:
    """JSON-ready records: Decimals as numbers rounded to a micro-dollar, dates as ISO text."""
    table = as_rows(data)
    return [{k: _json_value(v) for k, v in zip(table.columns, row, strict=True)}
            for row in table.rows]


def to_json(data: pd.DataFrame | Rows) -> str:
    return json.dumps(records(data), indent=2)


def emit(data: pd.DataFrame | Rows, fmt: str, money: tuple[str, ...] = ("cost_usd",)) -> None:
    """Print a table to stdout as the CLI's ``--format`` asks: table, csv or json."""
    if fmt == "json":
        print(to_json(data))
    elif fmt == "csv":
        sys.stdout.write(to_csv(data))
    else:
        print(to_table(data, money=money))


def to_table(data: pd.DataFrame | Rows, money: tuple[str, ...] = ("cost_usd",)) -> str:
    """A plain aligned text table for the terminal; money to the cent, counts with commas.
    Numbers (and money) are right-aligned, text left. Built a column at a time, and each line
    with one format call: a report of a hundred thousand rows prints in well under a second.
    """
    table = as_rows(data)
    if not table.rows:
        return "(no rows)"
    columns = list(table.columns)
    specs, cells = [], []
    for c, values in zip(columns, zip(*table.rows, strict=True), strict=True):
        kinds = set(map(type, values))
        text = _column_cells(values, kinds, c in money)
        width = max(len(c), *map(len, text))
        right = c in money or _numeric(values, kinds)
        specs.append(f"{{:{'>' if right else '<'}{width}}}")
        cells.append(text)
    line = "  ".join(specs).format
    return "\n".join([line(*columns), *(line(*row) for row in zip(*cells, strict=True))])


def _column_cells(values: Sequence[Any], kinds: set[type], money: bool) -> list[str]:
    """A column's cells as text; text and flag columns without a call per cell."""
    if kinds == {str}:
        return list(values)
    if kinds == {bool}:
        return list(map(str, values))
    return [_cell(v, money) for v in values]


def _numeric(values: Sequence[Any], kinds: set[type]) -> bool:
    """A column of numbers (missing cells aside, at least one number; flags are not);
    ``kinds``: the types of its values."""
    if kinds <= {str, bool}:
        return False
    present = [v for v in values if not _missing(v)]
    return bool(present) and all(isinstance(v, Number) and not isinstance(v, bool)
                                 for v in present)


def dollars(value: object, signed: bool = False) -> str:
    """Dollars as a person writes them: ``$1,234.56``, ``-$5.10`` (the sign before the $,
    never ``$-5.10``), and with ``signed`` a ``+`` on gains too. Decimals keep their exact
    rounding; an amount that rounds to zero has no sign."""
    amount = value if isinstance(value, Decimal) else float(value or 0)  # type: ignore[arg-type]
    text = f"{abs(amount):,.2f}"
    sign = "-" if amount < 0 and text != "0.00" else "+" if signed else ""
    return f"{sign}${text}"


def _cell(value: Any, money: bool) -> str:
    if type(value) is str:  # most cells, first
        return value
    if isinstance(value, float):  # a float's own formatting rounds as Decimal(value) would
        return "" if value != value else f"{value:,.2f}" if money else str(value)
    if _missing(value):
        return ""
    if money:
        return f"{Decimal(value):,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if hasattr(value, "item") and isinstance(value.item(), int):
        return f"{value.item():,}"
    return str(value)
