"""Named what-if scenarios (saved, listed, deleted, audited) and scenarios run on the store.

Hand-computed (per 1M tokens: gpt-4o 2.50 / 1.25 cached / 10 out; gpt-5-mini 0.25 / 0.025 /
2; batch half price):
- Production, 1 Sept: gpt-4o 1,000,000 in (200,000 cached), 100,000 out:
  gpt-4o 2.00 + 0.25 + 1.00 = $3.25; as gpt-5-mini 0.20 + 0.005 + 0.20 = $0.405.
- Research, 2 Oct: gpt-4o batch 1,000,000 in, 1,000,000 out:
  gpt-4o (2.50 + 10) / 2 = $6.25; as gpt-5-mini (0.25 + 2) / 2 = $1.125.
"""

from __future__ import annotations

import csv
import json
from datetime import date, timedelta

import pandas as pd
import pytest

from analytics import audit
from analytics.access import SYSTEM, AccessDenied, Principal
from analytics.price_store import current_book
from analytics.pricing import MigrationScenario, PriceListScenario, ScenarioError, price_table
from analytics.scenarios import (
    delete_scenario,
    describe,
    edited_price_list,
    families_in_use,
    forecast_effect,
    list_scenarios,
    load_scenario,
    parse_migration,
    run_scenario,
    save_scenario,
)
from tests.pricing_fixtures import (
    D1,
    GPT4O,
    PROD,
    RESEARCH,
    import_exports,
    import_sample,
    usage,
)

MEMBER = Principal("mark", "member")
OCT2 = date(2026, 10, 2)
ALL_TO_MINI = MigrationScenario("gpt-4o", "gpt-5-mini", 1.0)


@pytest.fixture
def store(engine, tmp_path):
    import_exports(engine, tmp_path, [
        usage(D1, PROD, GPT4O, 1_000_000, 200_000, 100_000),
        usage(OCT2, RESEARCH, GPT4O, 1_000_000, 0, 1_000_000, batch=True),
    ], [(D1, PROD, f"{GPT4O}, input", "3.25"), (OCT2, RESEARCH, f"{GPT4O}, input", "6.25")])
    return engine  # the cost export names the projects; repricing reads usage only


# --- saved scenarios ---------------------------------------------------------------------


def test_save_list_load_delete_round_trip_with_audit(engine):
    scenario = MigrationScenario("gpt-4o", "gpt-5-mini", 0.7, project_ids=(PROD,))
    save_scenario(engine, MEMBER, scenario, "  4o to mini ")
    listed = list_scenarios(engine)
    assert listed["name"].tolist() == ["4o to mini"]
    assert listed["description"][0] == f"Move 70% of gpt-4o to gpt-5-mini ({PROD})"
    assert listed["updated_by"][0] == "mark"
    loaded = load_scenario(engine, "4o to mini")
    assert loaded == MigrationScenario("gpt-4o", "gpt-5-mini", 0.7, project_ids=(PROD,),
                                       name="4o to mini")
    delete_scenario(engine, MEMBER, "4o to mini")
    assert list_scenarios(engine).empty
    assert audit.entries(engine)["action"].tolist() == ["scenario.delete", "scenario.save"]


def test_a_name_is_replaced_only_when_asked(engine):
    save_scenario(engine, MEMBER, ALL_TO_MINI, "plan")
    with pytest.raises(ScenarioError, match="exists already"):
        save_scenario(engine, MEMBER, MigrationScenario("gpt-4o", "gpt-4.1", 1.0), "plan")
    assert load_scenario(engine, "plan").to_family == "gpt-5-mini"
    save_scenario(engine, MEMBER, MigrationScenario("gpt-4o", "gpt-4.1", 1.0), "plan",
                  replace=True)
    assert load_scenario(engine, "plan").to_family == "gpt-4.1"
    replaced = audit.entries(engine, action="scenario.save")
    assert json.loads(replaced["before"][0])["to_family"] == "gpt-5-mini"


def test_readers_cannot_save_or_delete(engine):
    reader = Principal("rita", "reader")
    with pytest.raises(AccessDenied):
        save_scenario(engine, reader, ALL_TO_MINI, "x")
    save_scenario(engine, MEMBER, ALL_TO_MINI, "x")
    with pytest.raises(AccessDenied):
        delete_scenario(engine, reader, "x")
    assert list_scenarios(engine)["name"].tolist() == ["x"]


def test_a_scoped_member_cannot_save_a_scenario_for_a_hidden_project(engine):
    scoped = Principal("sue", "member", frozenset({RESEARCH}))
    with pytest.raises(AccessDenied):
        save_scenario(engine, scoped, MigrationScenario("gpt-4o", "gpt-5-mini", 1.0,
                                                        project_ids=(PROD,)), "x")
    assert list_scenarios(engine).empty


@pytest.mark.parametrize("name,message", [("  ", "Give the scenario a name"),
                                          ("x" * 129, "at most 128")])
def test_bad_names_are_refused(engine, name, message):
    with pytest.raises(ScenarioError, match=message):
        save_scenario(engine, MEMBER, ALL_TO_MINI, name)


def test_unknown_names_are_plain_errors(engine):
    with pytest.raises(ScenarioError, match="no saved scenario named 'nope'"):
        load_scenario(engine, "nope")
    with pytest.raises(ScenarioError, match="no saved scenario named 'nope'"):
        delete_scenario(engine, MEMBER, "nope")


def test_price_list_scenario_is_saved_with_its_rows(engine):
    book = current_book(engine)
    rows = price_table(book, D1).query("status == 'in effect' and family == 'gpt-5'")
    edited = rows.assign(input_per_1m="1")
    scenario = edited_price_list(rows.drop(columns="status"), edited, D1)
    save_scenario(engine, MEMBER, scenario, "cheap gpt-5")
    loaded = load_scenario(engine, "cheap gpt-5")
    assert isinstance(loaded, PriceListScenario)
    assert str(loaded.book.price_for("openai", "gpt-5", D1).input_per_1m) == "1"
    assert describe(loaded) == "Price list for gpt-5"


# --- building scenarios from text and tables ---------------------------------------------


def test_parse_migration_takes_percent_or_fraction_and_project_names(store):
    by_name = parse_migration(store, SYSTEM, "gpt-4o:gpt-5-mini:70%:Production")
    assert (by_name.share, by_name.project_ids) == (0.7, (PROD,))
    by_id = parse_migration(store, SYSTEM, f"gpt-4o:gpt-5-mini:0.25:{PROD},{RESEARCH}")
    assert (by_id.share, by_id.project_ids) == (0.25, (PROD, RESEARCH))
    assert parse_migration(store, SYSTEM, "gpt-4o:gpt-5-mini:1").project_ids is None


@pytest.mark.parametrize("text,message", [
    ("gpt-4o:gpt-5-mini", "is not FROM:TO:SHARE"),
    ("gpt-4o:gpt-5-mini:lots", "not a number like 0.7 or 70%"),
    ("gpt-4o:gpt-5-mini:150%", "between 0 and 1"),
    ("gpt-4o:gpt-5-mini:1:Nowhere", "No project 'Nowhere'"),
])
def test_bad_migrations_are_plain_errors(store, text, message):
    with pytest.raises(ScenarioError, match=message):
        parse_migration(store, SYSTEM, text)


def test_edited_price_list_keeps_changed_rows_from_the_period_start(engine):
    original = price_table(current_book(engine), D1).query("status == 'in effect'").drop(
        columns="status").reset_index(drop=True)
    edited = original.copy()
    edited.loc[edited["family"] == "gpt-4o", "output_per_1m"] = "5"
    scenario = edited_price_list(original, edited, date(2026, 1, 1), "half output")
    rows = scenario.book.to_frame()
    assert rows["family"].tolist() == ["gpt-4o"]
    assert rows["effective_from"].tolist() == ["2026-01-01"]
    assert rows["output_per_1m"].tolist() == ["5"] and rows["input_per_1m"].tolist() == ["2.50"]
    with pytest.raises(ScenarioError, match="Change at least one price"):
        edited_price_list(original, original.copy(), D1)


# --- running scenarios -------------------------------------------------------------------


def test_moving_all_gpt4o_to_gpt5_mini(store):
    result = run_scenario(store, SYSTEM, ALL_TO_MINI, D1, OCT2)
    assert result.baseline_usd == pytest.approx(3.25 + 6.25)
    assert result.scenario_usd == pytest.approx(0.405 + 1.125)
    assert result.difference_usd == pytest.approx(0.405 - 3.25 + 1.125 - 6.25)
    monthly = result.monthly.set_index(result.monthly["month"].dt.strftime("%Y-%m"))
    assert monthly.loc["2026-09", "difference_usd"] == pytest.approx(-2.845)
    assert monthly.loc["2026-10", "difference_usd"] == pytest.approx(-5.125)
    by = result.by_project_model.set_index("project")
    assert by.loc["Production", "difference_usd"] == pytest.approx(-2.845)
    assert result.unpriced.empty


def test_partial_migration_in_one_project(store):
    scenario = parse_migration(store, SYSTEM, "gpt-4o:gpt-5-mini:70%:Production")
    result = run_scenario(store, SYSTEM, scenario, D1, OCT2)
    assert result.difference_usd == pytest.approx(0.7 * (0.405 - 3.25))


def test_migration_to_an_unpriced_family_is_listed_not_summed(store):
    result = run_scenario(store, SYSTEM, MigrationScenario("gpt-4o", "gpt-9", 1.0), D1, OCT2)
    assert result.unpriced["rows"].sum() == 2
    assert result.unpriced["reason"].str.contains("gpt-9").all()
    assert result.baseline_usd == 0.0


def test_families_in_use_and_bad_period(store):
    assert families_in_use(store, SYSTEM, D1, OCT2) == ["gpt-4o"]
    with pytest.raises(ScenarioError, match="ends before it starts"):
        run_scenario(store, SYSTEM, ALL_TO_MINI, OCT2, D1)


def test_forecast_effect_scales_the_days_still_to_come(engine, tmp_path):
    # $3.25 of gpt-4o every day from 2 Aug to 10 Sept; as gpt-5-mini $0.405 a day.
    days = [date(2026, 8, 2) + timedelta(days=i) for i in range(40)]
    import_exports(engine, tmp_path,
                   [usage(d, PROD, GPT4O, 1_000_000, 200_000, 100_000) for d in days], [])
    effect = forecast_effect(engine, SYSTEM, ALL_TO_MINI, date(2026, 9, 10), method="runrate")
    # Run rate: 10 days x 3.25 = 32.50 spent; 30-day month -> 97.50; 65.00 still to come.
    assert effect.baseline.actual_to_date == pytest.approx(32.50)
    assert effect.baseline.forecast == pytest.approx(97.50)
    assert effect.ratio == pytest.approx(0.405 / 3.25)
    assert effect.forecast == pytest.approx(32.50 + 65.00 * 0.405 / 3.25, abs=0.01)  # 40.60
    assert effect.difference_usd == pytest.approx(40.60 - 97.50, abs=0.01)


# --- the sample --------------------------------------------------------------------------


def _sample_gpt4o_rows(folder) -> list[dict]:
    """gpt-4o usage rows of the overlapping sample windows, each bucket counted once."""
    seen: dict[tuple, dict] = {}
    for path in sorted(folder.glob("completions_usage_*.csv")):
        with path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                if row["model"].startswith("gpt-4o-2024-08-06"):
                    key = (row["start_time"], row["project_id"], row["api_key_id"],
                           row["user_id"], row["batch"].lower(), row["service_tier"])
                    seen.setdefault(key, row)
    return list(seen.values())


def test_sample_month_with_every_gpt4o_request_moved_to_gpt5_mini(engine):
    folder = import_sample(engine, "completions_usage_*.csv")
    expected = 0.0
    for row in _sample_gpt4o_rows(folder):
        cached = float(row["input_cached_tokens"])
        uncached = float(row["input_tokens"]) - cached
        output = float(row["output_tokens"])
        # gpt-5-mini minus gpt-4o, per token type, per 1M tokens
        dollars = (uncached * (0.25 - 2.50) + cached * (0.025 - 1.25)
                   + output * (2.00 - 10.00)) / 1_000_000
        expected += dollars * (0.5 if row["batch"].lower() == "true" else 1.0)
    assert expected < -100  # the sample has real gpt-4o traffic: a meaningful check
    result = run_scenario(engine, SYSTEM, ALL_TO_MINI, date(2026, 9, 1), date(2026, 9, 30))
    assert result.difference_usd == pytest.approx(expected, rel=1e-9)
    assert result.unpriced.empty
    assert len(result.monthly) == 1
    assert isinstance(result.monthly["month"][0], pd.Timestamp)
