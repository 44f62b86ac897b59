"""Frames out as CSV and JSON that are safe to open in a spreadsheet.

Text from an export (a project name, a line item) could start with ``=`` and run as a formula
when finance opens the download. Text cells that could be read as a formula get a leading
apostrophe (OWASP's advice); numbers stay numbers, so a credit of -12.50 still sums.
"""

from __future__ import annotations

import io
import json
import sys
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pandas as pd

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
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    return value


def to_csv(frame: pd.DataFrame) -> str:
    """CSV text with formula-looking text cells neutralised and money written in full."""
    safe = frame.copy()
    for column in safe.columns:
        safe[column] = [neutralise(v) if isinstance(v, str) else _plain(v)
                        for v in safe[column]]
    buffer = io.StringIO()
    safe.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue()


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(round(value, 6))
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return value


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready records: Decimals as numbers rounded to a micro-dollar, dates as ISO text."""
    return [{k: _json_value(v) for k, v in row.items()} for row in frame.to_dict("records")]


def to_json(frame: pd.DataFrame) -> str:
    return json.dumps(records(frame), indent=2)


def emit(frame: pd.DataFrame, fmt: str, money: tuple[str, ...] = ("cost_usd",)) -> None:
    """Print a frame to stdout as the CLI's ``--format`` asks: table, csv or json."""
    if fmt == "json":
        print(to_json(frame))
    elif fmt == "csv":
        sys.stdout.write(to_csv(frame))
    else:
        print(to_table(frame, money=money))


def to_table(frame: pd.DataFrame, money: tuple[str, ...] = ("cost_usd",)) -> str:
    """A plain aligned text table for the terminal; money to the cent, counts with commas."""
    if frame.empty:
        return "(no rows)"
    shown = pd.DataFrame({
        c: [_cell(v, c in money) for v in frame[c]] for c in frame.columns})
    widths = {c: max(len(c), *(len(v) for v in shown[c])) for c in shown.columns}
    numeric = {c for c in frame.columns if c in money or pd.api.types.is_numeric_dtype(frame[c])}

    def fmt(c: str, v: str) -> str:
        return v.rjust(widths[c]) if c in numeric else v.ljust(widths[c])

    lines = ["  ".join(fmt(c, c) for c in shown.columns)]
    lines += ["  ".join(fmt(c, row[c]) for c in shown.columns) for _, row in shown.iterrows()]
    return "\n".join(lines)


def dollars(value: object, signed: bool = False) -> str:
    """Dollars as a person writes them: ``$1,234.56``, ``-$5.10`` (the sign before the $,
    never ``$-5.10``), and with ``signed`` a ``+`` on gains too. Decimals keep their exact
    rounding; an amount that rounds to zero has no sign."""
    amount = value if isinstance(value, Decimal) else float(value or 0)  # type: ignore[arg-type]
    text = f"{abs(amount):,.2f}"
    sign = "-" if amount < 0 and text != "0.00" else "+" if signed else ""
    return f"{sign}${text}"


def _cell(value: Any, money: bool) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if money:
        return f"{Decimal(value):,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if hasattr(value, "item") and isinstance(value.item(), int):
        return f"{value.item():,}"
    return str(value)
