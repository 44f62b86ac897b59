"""Owner-added prices: stored with history and audit, merged over the price file, and never
touching billed cost. gpt-4o list price 2.50 / 1.25 cached / 10 out per 1M tokens."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pandas as pd
import pytest

from analytics import audit
from analytics.access import SYSTEM, AccessDenied, Principal
from analytics.price_store import add_price, current_book, price_history
from analytics.pricing import PriceBookError, price_table
from analytics.queries import spend
from analytics.spend_estimates import spend_with_estimates
from tests.pricing_fixtures import D1, D2, GPT4O, PROD, import_exports, usage

OWNER = Principal("olivia", "owner")


def gpt4o(effective_from: str, input_rate: str = "5", output_rate: str = "20") -> dict:
    return {"provider": "openai", "family": "gpt-4o", "effective_from": effective_from,
            "input_per_1m": input_rate, "cached_input_per_1m": "2.5",
            "output_per_1m": output_rate, "source": "test"}


def test_added_price_applies_from_its_day_and_the_file_before(engine):
    add_price(engine, OWNER, gpt4o("2026-09-02"))
    book = current_book(engine)
    assert book.price_for("openai", "gpt-4o", "2026-09-01").input_per_1m == Decimal("2.50")
    assert book.price_for("openai", "gpt-4o", "2026-09-02").input_per_1m == Decimal("5")
    assert book.price_for("openai", "gpt-4o", "2026-09-02").source == "test"


def test_a_future_price_changes_no_estimate_before_its_date(engine, tmp_path):
    # Usage only, so every figure is an estimate: $3.25 a day at the list price.
    import_exports(engine, tmp_path, [usage(D1, PROD, GPT4O, 1_000_000, 200_000, 100_000),
                                      usage(D2, PROD, GPT4O, 1_000_000, 200_000, 100_000)], [])
    before = spend_with_estimates(engine, SYSTEM, "day")["cost_usd"].tolist()
    assert before == [Decimal("3.25"), Decimal("3.25")]
    add_price(engine, OWNER, gpt4o("2030-01-01"))
    assert spend_with_estimates(engine, SYSTEM, "day")["cost_usd"].tolist() == before
    add_price(engine, OWNER, gpt4o("2026-09-02"))
    # From day 2: 0.8 x 5 + 0.2 x 2.5 + 0.1 x 20 = 4 + 0.5 + 2 = $6.50; day 1 unchanged.
    after = spend_with_estimates(engine, SYSTEM, "day")["cost_usd"].tolist()
    assert after == [Decimal("3.25"), Decimal("6.50")]


def test_a_price_change_never_rewrites_billed_cost(engine, tmp_path):
    import_exports(engine, tmp_path, [usage(D1, PROD, GPT4O, 1_000_000, 200_000, 100_000)],
                   [(D1, PROD, f"{GPT4O}, input", "3.30")])
    add_price(engine, OWNER, gpt4o("2026-01-01", "100", "100"))
    assert spend(engine, SYSTEM, "day")["cost_usd"].tolist() == [Decimal("3.30")]
    assert spend_with_estimates(engine, SYSTEM, "day")["cost_usd"].tolist() == [Decimal("3.30")]


def test_history_is_kept_and_the_newest_row_for_a_day_wins(engine):
    add_price(engine, OWNER, gpt4o("2026-12-01", "3"))
    add_price(engine, OWNER, gpt4o("2026-12-01", "4"))
    history = price_history(engine)
    assert history["input_per_1m"].tolist() == [Decimal("4"), Decimal("3")]  # newest first
    assert history["superseded"].tolist() == [False, True]
    assert history["created_by"].tolist() == ["olivia", "olivia"]
    price = current_book(engine).price_for("openai", "gpt-4o", date(2026, 12, 5))
    assert price.input_per_1m == Decimal("4")


def test_every_added_price_is_audited_with_what_it_replaced(engine):
    add_price(engine, OWNER, gpt4o("2026-12-01", "3"))
    add_price(engine, OWNER, gpt4o("2026-12-01", "4"))
    entries = audit.entries(engine, action="price.add")
    assert entries["username"].tolist() == ["olivia", "olivia"]
    assert entries["target"][0] == "openai:gpt-4o:default:2026-12-01"
    assert '"input_per_1m": "3"' in entries["before"][0]
    assert pd.isna(entries["before"][1]), "the first price for a key replaced nothing"


@pytest.mark.parametrize("role", ["member", "reader"])
def test_only_owners_add_prices(engine, role):
    with pytest.raises(AccessDenied):
        add_price(engine, Principal("x", role), gpt4o("2026-12-01"))
    assert price_history(engine).empty
    assert audit.entries(engine, action="price.add").empty


@pytest.mark.parametrize("change,message", [
    ({"input_per_1m": "abc"}, "input_per_1m 'abc' is not a number"),
    ({"effective_from": "next week"}, "effective_from 'next week' is not a date"),
    ({"output_per_1m": "-1"}, "output_per_1m is negative"),
    ({"family": ""}, "family is empty"),
    ({"input_per_1m": "0.1234567"}, "more than 6 decimals"),
    ({"batch_discount": "0.33333"}, "batch_discount 0.33333 has more than 4 decimals"),
])
def test_bad_prices_are_refused_in_plain_words(engine, change, message):
    with pytest.raises(PriceBookError, match=message):
        add_price(engine, OWNER, {**gpt4o("2026-12-01"), **change})
    assert price_history(engine).empty


def test_price_table_marks_in_effect_scheduled_and_replaced_rows(engine):
    add_price(engine, OWNER, gpt4o("2026-12-01"))
    table = price_table(current_book(engine), date(2026, 11, 27))
    gpt4o_rows = table[(table["family"] == "gpt-4o") & (table["service_tier"] == "default")]
    assert gpt4o_rows[["effective_from", "status"]].values.tolist() == [
        ["2024-08-06", "in effect"], ["2026-12-01", "scheduled"]]
    later = price_table(current_book(engine), date(2026, 12, 1))
    assert later.loc[later["family"] == "gpt-4o", "status"].tolist() == ["replaced", "in effect"]
    o3 = table[(table["family"] == "o3") & (table["service_tier"] == "default")]
    assert o3["status"].tolist() == ["replaced", "in effect"]  # launch price, then the cut
