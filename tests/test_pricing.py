"""Price book loading and effective dating, token -> dollar estimates, what-if repricing.

Every dollar figure below is worked out by hand in the comment next to it.
"""

import csv
import datetime as dt
import json
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from analytics.pricing import (
    MigrationScenario,
    PriceBook,
    PriceBookError,
    PriceListScenario,
    ScenarioError,
    UsageFrameError,
    estimate_cost,
    first_priced_day,
    load_price_book,
    monthly_difference,
    reprice,
    reprice_summary,
    scenario_from_json,
    scenario_to_json,
    unpriced_models,
)

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples"

HEADER = (
    "provider,family,service_tier,effective_from,input_per_1m,cached_input_per_1m,"
    "cache_write_per_1m,output_per_1m,batch_discount,unit,source,source_date\n"
)


def price_rows(*rows: tuple) -> pd.DataFrame:
    """(provider, family, tier, effective_from, input, cached, output[, batch_discount])"""
    return pd.DataFrame(
        [
            {
                "provider": r[0],
                "family": r[1],
                "service_tier": r[2],
                "effective_from": r[3],
                "input_per_1m": r[4],
                "cached_input_per_1m": r[5],
                "output_per_1m": r[6],
                "batch_discount": r[7] if len(r) > 7 else "0.5",
            }
            for r in rows
        ]
    )


@pytest.fixture
def book() -> PriceBook:
    return PriceBook.from_frame(
        price_rows(
            ("openai", "gpt-4o", "default", "2024-08-06", "2.50", "1.25", "10"),
            ("openai", "gpt-5-mini", "default", "2025-08-07", "0.25", "0.025", "2"),
            ("openai", "gpt-4", "default", "2023-03-14", "30", "", "60"),
            ("openai", "gpt-5", "flex", "2025-08-07", "0.625", "0.0625", "5", "1"),
        ),
        "test book",
    )


@pytest.fixture
def usage() -> pd.DataFrame:
    day = dt.date(2026, 9, 1)
    rows = [
        # project, model, batch, input (incl. cached), cached, output
        ("p1", "gpt-4o-2024-08-06", False, 1_000_000, 400_000, 200_000),
        ("p2", "gpt-4o-2024-08-06", True, 2_000_000, 0, 100_000),
        ("p1", "gpt-4-0613", False, 100_000, 50_000, 10_000),
        ("p2", "gpt-5-mini-2025-08-07", False, 4_000_000, 2_000_000, 1_000_000),
        ("p1", "gpt-5.1-2026-01-15", False, 1_000, 0, 1_000),
    ]
    return pd.DataFrame(
        [
            {
                "day": day,
                "provider": "openai",
                "project_id": p,
                "model": m,
                "batch": b,
                "service_tier": "default",
                "input_tokens": i,
                "cached_input_tokens": c,
                "output_tokens": o,
                "requests": 10,
            }
            for p, m, b, i, c, o in rows
        ]
    )


# Hand-computed list-price dollars of the usage fixture's rows:
# A gpt-4o: 600k x 2.50 + 400k x 1.25 + 200k x 10 = 1.50 + 0.50 + 2.00       = 4.00
# B gpt-4o batch: (2M x 2.50 + 100k x 10) x 0.5 = (5.00 + 1.00) / 2         = 3.00
# C gpt-4 (no cached price): 100k x 30 + 10k x 60 = 3.00 + 0.60             = 3.60
# D gpt-5-mini: 2M x 0.25 + 2M x 0.025 + 1M x 2 = 0.50 + 0.05 + 2.00        = 2.55
EXPECTED = [4.00, 3.00, 3.60, 2.55]


# --- the seeded price file ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "family", "prices"),
    [
        ("openai", "gpt-5", ("1.25", "0.125", "10")),
        ("openai", "gpt-5-mini", ("0.25", "0.025", "2")),
        ("openai", "gpt-4o", ("2.50", "1.25", "10")),
        ("openai", "gpt-4o-mini", ("0.15", "0.075", "0.60")),
        ("openai", "gpt-4.1", ("2", "0.5", "8")),
        ("openai", "o3", ("2", "0.5", "8")),
        ("openai", "gpt-4", ("30", None, "60")),
        ("anthropic", "claude-sonnet-4-5", ("3", "0.30", "15")),
    ],
)
def test_seeded_price_file_holds_current_list_prices(
    provider: str, family: str, prices: tuple[str, str | None, str]
) -> None:
    price = load_price_book().price_for(provider, family, dt.date(2026, 11, 27))
    assert price is not None
    expected_cached = None if prices[1] is None else Decimal(prices[1])
    assert (price.input_per_1m, price.cached_input_per_1m, price.output_per_1m) == (
        Decimal(prices[0]),
        expected_cached,
        Decimal(prices[2]),
    )
    assert price.batch_discount == Decimal("0.5")
    assert price.source


def test_seeded_o3_price_before_the_june_2025_cut_was_five_times_higher() -> None:
    book = load_price_book()
    assert book.price_for("openai", "o3", "2025-06-09").input_per_1m == Decimal("10")
    assert book.price_for("openai", "o3", "2025-06-10").input_per_1m == Decimal("2")


def test_cached_rate_falls_back_to_input_price() -> None:
    price = load_price_book().price_for("openai", "gpt-4", "2026-01-01")
    assert price.cached_rate_per_1m == Decimal("30")


# --- effective dating -----------------------------------------------------------------------


def test_price_for_takes_latest_row_not_after_the_day() -> None:
    book = PriceBook.from_frame(
        price_rows(
            ("openai", "gpt-x", "default", "2025-01-01", "4", "", "8"),
            ("openai", "gpt-x", "default", "2026-01-01", "1", "", "2"),
        )
    )
    assert book.price_for("openai", "gpt-x", "2024-12-31") is None
    assert book.price_for("openai", "gpt-x", "2025-01-01").input_per_1m == Decimal("4")
    assert book.price_for("openai", "gpt-x", "2025-12-31").input_per_1m == Decimal("4")
    assert book.price_for("openai", "gpt-x", dt.date(2026, 1, 1)).input_per_1m == Decimal("1")


def test_a_future_price_changes_nothing_before_its_date(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_text(HEADER + "openai,gpt-x,default,2026-01-01,1,,,2,0.5,tokens,test,\n")
    future = price_rows(("openai", "gpt-x", "default", "2026-12-01", "0.5", "", "1"))
    book = load_price_book(path, extra=future)
    assert book.price_for("openai", "gpt-x", "2026-11-30").input_per_1m == Decimal("1")
    assert book.price_for("openai", "gpt-x", "2026-12-01").input_per_1m == Decimal("0.5")
    usage = pd.DataFrame(
        {
            "day": ["2026-11-30", "2026-12-01"],
            "provider": "openai",
            "model": "gpt-x",
            "input_tokens": [1_000_000, 1_000_000],
            "output_tokens": [1_000_000, 1_000_000],
        }
    )
    # 1M x 1 + 1M x 2 = 3.00 before; 1M x 0.5 + 1M x 1 = 1.50 from 1 December.
    assert estimate_cost(usage, book)["estimated_cost_usd"].tolist() == pytest.approx([3.0, 1.5])


def test_an_added_row_with_the_same_key_replaces_the_file_row(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_text(HEADER + "openai,gpt-x,default,2026-01-01,1,0.5,,2,0.5,tokens,test,\n")
    fix = price_rows(("openai", "gpt-x", "default", "2026-01-01", "3", "", "4"))
    book = load_price_book(path, extra=fix)
    assert len(book) == 1
    price = book.price_for("openai", "gpt-x", "2026-06-01")
    assert (price.input_per_1m, price.cached_input_per_1m) == (Decimal("3"), None)


# --- validation of price files ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("2026-01-01,abc,,,2,0.5,tokens,s,", "line 3: input_per_1m 'abc' is not a number"),
        ("01/02/2026,1,,,2,0.5,tokens,s,", "line 3: effective_from '01/02/2026' is not a date"),
        ("2026-01-01,-1,,,2,0.5,tokens,s,", "line 3: input_per_1m is negative"),
        ("2026-01-01,1,,,,0.5,tokens,s,", "line 3: output_per_1m is empty"),
        ("2026-01-01,1,,,2,1.5,tokens,s,", "line 3: batch_discount must be above 0"),
        ("2026-01-01,1,,,2,0.5,images,s,", "line 3: unit 'images' is not supported"),
        ("2026-01-01,NaN,,,2,0.5,tokens,s,", "line 3: input_per_1m 'NaN' is not a number"),
        ("2026-01-01,1,,,2,0.5,tokens,s,2026-13-01", "line 3: source_date '2026-13-01'"),
    ],
)
def test_bad_price_row_names_file_line_and_problem(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "my_prices.csv"
    first = "openai,gpt-ok,default,2026-01-01,1,,,2,0.5,tokens,s,\n"
    path.write_text(HEADER + first + "openai,gpt-x,default," + line + "\n")
    with pytest.raises(PriceBookError, match="my_prices.csv") as error:
        load_price_book(path)
    assert message in str(error.value)


def test_empty_family_is_named(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text(HEADER + "openai,,default,2026-01-01,1,,,2,0.5,tokens,s,\n")
    with pytest.raises(PriceBookError, match="p.csv line 2: family is empty"):
        load_price_book(path)


def test_missing_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("provider,family,effective_from,input_per_1m\nopenai,gpt-x,2026-01-01,1\n")
    with pytest.raises(PriceBookError, match=r"p.csv: missing column\(s\) output_per_1m"):
        load_price_book(path)


def test_unknown_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text(
        "provider,family,effective_from,input_per_1m,output_per_1m,colour\n"
        "openai,gpt-x,2026-01-01,1,2,red\n"
    )
    with pytest.raises(PriceBookError, match="unknown column.*colour"):
        load_price_book(path)


def test_two_prices_for_the_same_day_are_rejected_with_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    row = "openai,gpt-x,default,2026-01-01,1,,,2,0.5,tokens,s,\n"
    path.write_text(HEADER + "openai,gpt-y,default,2026-01-01,1,,,2,0.5,tokens,s,\n" + row + row)
    with pytest.raises(PriceBookError, match="p.csv lines 3 and 4: more than one price"):
        load_price_book(path)


def test_missing_price_file_is_a_plain_error(tmp_path: Path) -> None:
    with pytest.raises(PriceBookError, match="nope.csv: the price file was not found"):
        load_price_book(tmp_path / "nope.csv")


def test_bad_rows_in_a_frame_are_named_by_row() -> None:
    rows = price_rows(
        ("openai", "gpt-x", "default", "2026-01-01", "1", "", "2"),
        ("openai", "gpt-y", "default", "2026-01-01", "1", "", "two"),
    )
    with pytest.raises(PriceBookError, match="Owner prices row 2: output_per_1m 'two'"):
        PriceBook.from_frame(rows, "Owner prices")


def test_frame_rows_accept_numbers_dates_and_missing_values() -> None:
    rows = pd.DataFrame(
        {
            "provider": ["openai"],
            "family": ["gpt-x"],
            "effective_from": [dt.date(2026, 1, 1)],
            "input_per_1m": [1.5],
            "cached_input_per_1m": [float("nan")],
            "output_per_1m": [6],
        }
    )
    price = PriceBook.from_frame(rows).price_for("openai", "gpt-x", "2026-02-01")
    assert (price.input_per_1m, price.cached_input_per_1m, price.output_per_1m) == (
        Decimal("1.5"),
        None,
        Decimal("6"),
    )
    assert price.service_tier == "default" and price.batch_discount == Decimal("0.5")


# --- estimating cost -----------------------------------------------------------------------


def test_estimate_prices_uncached_cached_and_batch_tokens(usage, book) -> None:
    result = estimate_cost(usage, book)
    assert result["estimated_cost_usd"].iloc[:4].tolist() == pytest.approx(EXPECTED)
    assert result["priced"].tolist() == [True, True, True, True, False]
    assert result["family"].tolist() == ["gpt-4o", "gpt-4o", "gpt-4", "gpt-5-mini", "gpt-5.1"]
    # Input columns are kept as they were, in order.
    assert list(result.columns[: len(usage.columns)]) == list(usage.columns)
    assert result["requests"].tolist() == [10] * 5


def test_unknown_model_is_flagged_never_zero(usage, book) -> None:
    result = estimate_cost(usage, book)
    unknown = result.iloc[4]
    assert pd.isna(unknown["estimated_cost_usd"])
    assert "gpt-5.1" in unknown["unpriced_reason"]
    assert unpriced_models(result) == ["gpt-5.1-2026-01-15"]


def test_new_snapshot_is_priced_once_a_row_for_its_family_exists(usage, book) -> None:
    gpt51 = PriceBook.from_frame(
        price_rows(("openai", "gpt-5.1", "default", "2026-01-15", "1", "0.1", "9"))
    )
    result = estimate_cost(usage, book.with_rows(gpt51))
    # 1k x 1 + 1k x 9 per 1M = 0.01
    assert result["estimated_cost_usd"].iloc[4] == pytest.approx(0.01)
    assert unpriced_models(result) == []


def test_fine_tune_is_not_priced_at_its_base_model(usage, book) -> None:
    usage.loc[0, "model"] = "ft:gpt-4o-2024-08-06:acme::abc"
    result = estimate_cost(usage, book)
    assert not result["priced"].iloc[0]
    assert result["fine_tuned"].iloc[0]
    assert "fine-tuned" in result["unpriced_reason"].iloc[0]
    ft = PriceBook.from_frame(
        price_rows(("openai", "ft:gpt-4o", "default", "2024-08-06", "3.75", "1.875", "15"))
    )
    # 600k x 3.75 + 400k x 1.875 + 200k x 15 = 2.25 + 0.75 + 3.00 = 6.00
    repriced = estimate_cost(usage, book.with_rows(ft))
    assert repriced["estimated_cost_usd"].iloc[0] == pytest.approx(6.0)


def test_service_tier_without_a_price_is_flagged_and_flex_is_priced(usage, book) -> None:
    usage = usage.iloc[:1].copy()
    usage["service_tier"] = "priority"
    result = estimate_cost(usage, book)
    assert not result["priced"].iloc[0]
    assert "service tier 'priority'" in result["unpriced_reason"].iloc[0]
    usage["model"], usage["service_tier"] = "gpt-5-2025-08-07", "flex"
    # 600k x 0.625 + 400k x 0.0625 + 200k x 5 = 0.375 + 0.025 + 1.00 = 1.40
    assert estimate_cost(usage, book)["estimated_cost_usd"].iloc[0] == pytest.approx(1.40)


def test_missing_tier_and_batch_text_are_read_like_exports(usage, book) -> None:
    usage["service_tier"] = [None, "", "auto", "DEFAULT", "default"]
    usage["batch"] = ["False", "TRUE", "false", "False", "False"]
    result = estimate_cost(usage, book)
    assert result["estimated_cost_usd"].iloc[:4].tolist() == pytest.approx(EXPECTED)


def test_day_before_the_first_price_is_flagged(usage, book) -> None:
    usage.loc[3, "day"] = dt.date(2025, 8, 6)
    result = estimate_cost(usage, book)
    assert not result["priced"].iloc[3]
    assert "in effect on 2025-08-06" in result["unpriced_reason"].iloc[3]


def test_cached_tokens_above_input_are_flagged_not_priced(usage, book) -> None:
    usage.loc[0, "cached_input_tokens"] = 2_000_000
    result = estimate_cost(usage, book)
    assert pd.isna(result["estimated_cost_usd"].iloc[0])
    assert result["unpriced_reason"].iloc[0] == "cached tokens exceed input tokens"


def test_first_priced_day_per_model_and_tier(book) -> None:
    """Where unpriced usage can be: before that day, or anywhere when there is none."""
    models = pd.DataFrame({
        "provider": ["openai", "OpenAI", "openai", "openai", "openai", "openai"],
        "model": ["gpt-4o-2024-08-06", "gpt-5-mini-2025-08-07", "mystery-1", " ",
                  "gpt-5-2025-08-07", "ft:gpt-4o-2024-08-06:acme::x"],
        "service_tier": ["default", "auto", "default", "default", "flex", "default"],
    })
    days = first_priced_day(models, book)
    assert days.tolist()[:2] == [pd.Timestamp("2024-08-06"), pd.Timestamp("2025-08-07")]
    assert days.iloc[2:4].isna().all()  # an unknown family; no model name
    assert days.iloc[4] == pd.Timestamp("2025-08-07")  # gpt-5 is priced in flex only
    assert pd.isna(days.iloc[5])  # a fine-tune needs its own row


def test_books_with_the_same_rows_are_equal(book) -> None:
    """So that results kept per book (memo) serve every copy of it."""
    copy = PriceBook.from_frame(book.to_frame(), "copy")
    assert copy == book and hash(copy) == hash(book) and copy is not book
    changed = book.with_rows(PriceBook.from_frame(price_rows(
        ("openai", "gpt-4o", "default", "2027-01-01", "2", "1", "8")), "new"))
    assert changed != book


def test_cache_writes_are_priced_for_anthropic() -> None:
    book = load_price_book()
    usage = pd.DataFrame(
        {
            "day": [dt.date(2026, 9, 1)],
            "provider": ["anthropic"],
            "model": ["claude-sonnet-4-5-20250929"],
            # 1M input = 500k uncached + 300k cache reads + 200k cache writes
            "input_tokens": [1_000_000],
            "cached_input_tokens": [300_000],
            "cache_write_tokens": [200_000],
            "output_tokens": [100_000],
        }
    )
    # 500k x 3 + 300k x 0.30 + 200k x 3.75 + 100k x 15 = 1.50 + 0.09 + 0.75 + 1.50 = 3.84
    assert estimate_cost(usage, book)["estimated_cost_usd"].iloc[0] == pytest.approx(3.84)


def test_usage_without_required_columns_is_a_plain_error(book) -> None:
    with pytest.raises(UsageFrameError, match="missing column.*output_tokens"):
        estimate_cost(pd.DataFrame(columns=["day", "provider", "model", "input_tokens"]), book)


def test_empty_usage_gives_empty_result(usage, book) -> None:
    result = estimate_cost(usage.iloc[:0], book)
    assert len(result) == 0 and "estimated_cost_usd" in result


def test_hundred_thousand_rows_are_priced_vectorised(usage, book) -> None:
    big = pd.concat([usage.iloc[:4]] * 25_000, ignore_index=True)
    big["day"] = pd.Timestamp("2026-09-01") + pd.to_timedelta(big.index % 30, unit="D")
    result = estimate_cost(big, book)
    assert result["priced"].all()
    # 25,000 copies of rows costing 4.00 + 3.00 + 3.60 + 2.55 = 13.15
    assert result["estimated_cost_usd"].sum() == pytest.approx(25_000 * 13.15, rel=1e-9)


# --- what-if scenarios -----------------------------------------------------------------------


def test_moving_all_gpt4o_to_gpt5_mini(usage, book) -> None:
    result = reprice(usage, book, MigrationScenario("gpt-4o", "gpt-5-mini", 1.0))
    # A at gpt-5-mini: 600k x 0.25 + 400k x 0.025 + 200k x 2 = 0.15 + 0.01 + 0.40 = 0.56
    # B at gpt-5-mini, batch: (2M x 0.25 + 100k x 2) x 0.5 = 0.70 / 2          = 0.35
    assert result["baseline_usd"].iloc[:4].tolist() == pytest.approx(EXPECTED)
    assert result["scenario_usd"].iloc[:4].tolist() == pytest.approx([0.56, 0.35, 3.60, 2.55])
    summary = reprice_summary(result, by=["family"]).set_index("family")
    # gpt-4o: 7.00 -> 0.91, a saving of 6.09; the unknown gpt-5.1 row is counted, not summed.
    assert summary.loc["gpt-4o", "difference_usd"] == pytest.approx(-6.09)
    assert summary.loc["gpt-4o", "scenario_usd"] == pytest.approx(0.91)
    assert summary.loc["gpt-4", "difference_usd"] == pytest.approx(0.0)
    assert summary.loc["gpt-5.1", "unpriced_rows"] == 1
    assert pd.isna(summary.loc["gpt-5.1", "baseline_usd"])


def test_partial_migration_limited_to_one_project(usage, book) -> None:
    scenario = MigrationScenario("gpt-4o", "gpt-5-mini", 0.7, project_ids=["p1"])
    result = reprice(usage, book, scenario)
    # A (p1): 0.3 x 4.00 + 0.7 x 0.56 = 1.20 + 0.392 = 1.592; B (p2) stays 3.00.
    assert result["scenario_usd"].iloc[:2].tolist() == pytest.approx([1.592, 3.00])
    summary = reprice_summary(result, by=["project_id"]).set_index("project_id")
    assert summary.loc["p1", "difference_usd"] == pytest.approx(1.592 - 4.00)
    assert summary.loc["p2", "difference_usd"] == pytest.approx(0.0)


def test_migration_to_an_unpriced_target_is_flagged(usage, book) -> None:
    result = reprice(usage, book, MigrationScenario("gpt-4o", "gpt-9", 0.5))
    assert not result["priced"].iloc[0]
    assert result["unpriced_reason"].iloc[0].startswith("scenario: ")
    summary = reprice_summary(result, by=["family"]).set_index("family")
    assert summary.loc["gpt-4o", "unpriced_rows"] == 2


def test_price_list_scenario_replaces_the_family_prices(usage, book) -> None:
    cheaper = PriceBook.from_frame(
        price_rows(("openai", "gpt-4o", "default", "2020-01-01", "2", "0.5", "8"))
    )
    result = reprice(usage, book, PriceListScenario(cheaper, "gpt-4o at 2/8"))
    # The base book's later-dated gpt-4o row must not win over the scenario's.
    # A: 600k x 2 + 400k x 0.5 + 200k x 8 = 1.20 + 0.20 + 1.60 = 3.00
    # B: (2M x 2 + 100k x 8) x 0.5 = 4.80 / 2                    = 2.40
    assert result["scenario_usd"].iloc[:4].tolist() == pytest.approx([3.00, 2.40, 3.60, 2.55])
    assert result["difference_usd"].iloc[:4].sum() == pytest.approx(-1.60)


def test_monthly_difference_splits_by_month(usage, book) -> None:
    usage.loc[1, "day"] = dt.date(2026, 10, 3)
    result = reprice(usage, book, MigrationScenario("gpt-4o", "gpt-5-mini", 1.0))
    monthly = monthly_difference(result).set_index("month")
    assert monthly.loc[pd.Timestamp("2026-09-01"), "difference_usd"] == pytest.approx(0.56 - 4.00)
    assert monthly.loc[pd.Timestamp("2026-10-01"), "difference_usd"] == pytest.approx(0.35 - 3.00)


def test_scenarios_round_trip_through_json(book) -> None:
    migration = MigrationScenario("gpt-4o", "gpt-5-mini", 0.7, ["proj_a"], name="prod move")
    assert scenario_from_json(scenario_to_json(migration)) == migration
    price_list = PriceListScenario(book, "list")
    restored = scenario_from_json(scenario_to_json(price_list))
    assert restored.name == "list"
    assert restored.book.to_frame().equals(book.to_frame())
    assert json.loads(scenario_to_json(migration))["kind"] == "migration"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"from_family": "gpt-4o", "to_family": "gpt-5-mini", "share": 1.5}, "between 0 and 1"),
        ({"from_family": "gpt-4o", "to_family": "GPT-4o", "share": 0.5}, "different model family"),
        ({"from_family": "", "to_family": "gpt-5", "share": 0.5}, "from and to"),
    ],
)
def test_bad_migration_is_a_plain_error(kwargs: dict, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        MigrationScenario(**kwargs)


def test_malformed_saved_scenario_is_a_plain_error() -> None:
    with pytest.raises(ScenarioError, match="Unknown scenario kind"):
        scenario_from_json('{"kind": "magic"}')
    with pytest.raises(ScenarioError, match="incomplete"):
        scenario_from_json('{"kind": "migration", "from_family": "gpt-4o"}')
    with pytest.raises(ScenarioError, match="not valid JSON"):
        scenario_from_json("{")


# --- the sample exports ----------------------------------------------------------------------


def _openai_usage_once() -> list[dict]:
    """Usage rows of the overlapping sample windows, each bucket counted once (plain csv)."""
    seen: dict[tuple, dict] = {}
    for path in sorted((SAMPLES / "openai-small").glob("completions_usage_*.csv")):
        with path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                if not row["model"]:
                    continue  # an empty bucket: only the time columns are filled
                key = (
                    row["start_time"],
                    row["project_id"],
                    row["api_key_id"],
                    row["user_id"],
                    row["model"],
                    row["batch"].lower(),
                    row["service_tier"],
                )
                seen.setdefault(key, row)
    return list(seen.values())


@pytest.mark.skipif(
    not (SAMPLES / "openai-small" / "truth.json").exists(),
    reason="the shared sample exports (../shared/samples/openai-small) are not present",
)
def test_openai_sample_estimate_matches_truth_by_project() -> None:
    rows = _openai_usage_once()
    usage = pd.DataFrame(
        {
            "day": [dt.date.fromisoformat(r["start_time_iso"][:10]) for r in rows],
            "provider": "openai",
            "project_id": [r["project_id"] for r in rows],
            "model": [r["model"] for r in rows],
            "batch": [r["batch"].lower() == "true" for r in rows],
            "service_tier": [r["service_tier"] for r in rows],
            "input_tokens": [float(r["input_tokens"]) for r in rows],
            "cached_input_tokens": [float(r["input_cached_tokens"]) for r in rows],
            "output_tokens": [float(r["output_tokens"]) for r in rows],
        }
    )
    truth = json.loads((SAMPLES / "openai-small" / "truth.json").read_text())
    result = estimate_cost(usage, load_price_book())
    assert unpriced_models(result) == []
    by_project = result.groupby("project_id")["estimated_cost_usd"].sum()
    expected = truth["truth_completions_only"]["by_project"]
    assert set(by_project.index) == set(expected)
    for project, dollars in expected.items():
        assert by_project[project] == pytest.approx(dollars, rel=0.005), project


@pytest.mark.skipif(
    not (SAMPLES / "anthropic-small" / "truth.json").exists(),
    reason="the shared sample exports (../shared/samples/anthropic-small) are not present",
)
def test_anthropic_sample_estimate_matches_truth_by_model() -> None:
    usage_rows: dict[tuple, dict] = defaultdict(dict)
    path = next((SAMPLES / "anthropic-small").glob("claude_api_tokens_*.csv"))
    with path.open(newline="", encoding="utf-8") as handle:
        for r in csv.DictReader(handle):
            writes = int(r["usage_input_tokens_cache_write_5m"])
            assert int(r["usage_input_tokens_cache_write_1h"]) == 0  # 1h writes: not modelled
            reads = int(r["usage_input_tokens_cache_read"])
            key = (r["usage_date_utc"], r["model_version"], r["api_key"], r["workspace"])
            usage_rows[key] = {
                "day": dt.date.fromisoformat(r["usage_date_utc"]),
                "provider": "anthropic",
                "model": r["model_version"],
                # Anthropic's input count excludes cache reads and writes; canonical includes them.
                "input_tokens": int(r["usage_input_tokens_no_cache"]) + reads + writes,
                "cached_input_tokens": reads,
                "cache_write_tokens": writes,
                "output_tokens": int(r["usage_output_tokens"]),
            }
    result = estimate_cost(pd.DataFrame(list(usage_rows.values())), load_price_book())
    truth = json.loads((SAMPLES / "anthropic-small" / "truth.json").read_text())["truth"]
    by_model = result.groupby("model")["estimated_cost_usd"].sum()
    for model, dollars in truth["by_model"].items():
        assert by_model[model] == pytest.approx(dollars, rel=0.005), model
