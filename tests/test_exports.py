"""Downloads are safe to open in a spreadsheet, and money stays numeric."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pandas as pd

from analytics.exports import dollars, neutralise, to_csv


def test_formula_text_is_neutralised_and_money_stays_numeric():
    frame = pd.DataFrame({
        "name": ["=HYPERLINK(\"http://x\")", "+1", "-cmd", "@SUM(A1)", "\tx", "＝1", "plain"],
        "cost_usd": [Decimal("-12.50"), Decimal("1"), Decimal("2.25"), Decimal("0"),
                     Decimal("3"), Decimal("4"), Decimal("5")],
    })
    rows = list(csv.DictReader(io.StringIO(to_csv(frame))))
    assert [r["name"][0] for r in rows[:6]] == ["'"] * 6
    assert rows[6]["name"] == "plain"
    assert rows[0]["cost_usd"] == "-12.50"
    assert sum(Decimal(r["cost_usd"]) for r in rows) == Decimal("2.75")


def test_numbers_are_not_touched():
    assert neutralise(-3) == -3
    assert neutralise("gpt-4o") == "gpt-4o"


def test_dollars_put_the_sign_before_the_dollar_and_round_decimals_exactly() -> None:
    assert dollars(-5.1) == "-$5.10"  # not "$-5.10"
    assert dollars(Decimal("1234.5")) == "$1,234.50"
    assert dollars(3, signed=True) == "+$3.00" and dollars(-3, signed=True) == "-$3.00"
    assert dollars(-0.001) == "$0.00"  # rounds to nothing: no sign
    assert dollars(Decimal("2.675")) == "$2.68"  # exact half, rounded to even; float says 2.67
    assert dollars(None) == "$0.00"
