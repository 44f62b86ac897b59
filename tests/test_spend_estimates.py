"""Spend reports fill missing billed cost from usage x the price book and say so.

Hand-computed figures (list prices per 1M tokens, see tests/pricing_fixtures.py):
- gpt-4o bucket, 1,000,000 input of which 200,000 cached, 100,000 output:
  0.8 x 2.50 + 0.2 x 1.25 + 0.1 x 10 = 2.00 + 0.25 + 1.00 = $3.25
- gpt-5-mini batch bucket, 1,000,000 input, 1,000,000 output: (0.25 + 2.00) / 2 = $1.125
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest

from analytics.access import SYSTEM, Principal
from analytics.price_store import add_price
from analytics.queries import spend
from analytics.spend_estimates import spend_with_estimates, unpriced_usage
from tests.pricing_fixtures import (
    BATCH,
    D1,
    D2,
    GPT4O,
    MINI,
    PROD,
    RESEARCH,
    import_exports,
    import_sample,
    usage,
)

D3 = D2 + timedelta(days=1)


@pytest.fixture
def store(engine, tmp_path):
    """Production billed on day 1 only ($3.30, not the $3.25 list price: the bill wins);
    day 2 has usage only, including a model no price book knows."""
    import_exports(engine, tmp_path, [
        usage(D1, PROD, GPT4O, 1_000_000, 200_000, 100_000),
        usage(D2, PROD, GPT4O, 1_000_000, 200_000, 100_000),
        usage(D2, BATCH, MINI, 1_000_000, 0, 1_000_000, batch=True),
        usage(D2, RESEARCH, "mystery-model-1", 500, 0, 50),
    ], [(D1, PROD, f"{GPT4O}, input", "3.30")])
    return engine


def _by(frame, key):
    return frame.set_index(key)


def test_by_project_fills_gaps_and_labels_the_basis(store):
    frame = _by(spend_with_estimates(store, SYSTEM, "project"), "project")
    assert frame.loc[PROD, "cost_usd"] == Decimal("6.55")  # 3.30 billed + 3.25 estimated
    assert frame.loc[PROD, "basis"] == "mixed"
    assert frame.loc[BATCH, "cost_usd"] == Decimal("1.125")
    assert frame.loc[BATCH, "basis"] == "estimated"
    assert frame.loc[RESEARCH, "cost_usd"] is None, "unpriced usage is never $0"
    assert frame.loc[RESEARCH, "basis"] == "unpriced"
    assert frame.loc[RESEARCH, "unpriced_models"] == "mystery-model-1"
    assert frame.loc[PROD, "unpriced_models"] == ""


def test_by_day_and_by_month(store):
    days = _by(spend_with_estimates(store, SYSTEM, "day"), "day")
    assert days.loc[D1.isoformat(), "cost_usd"] == Decimal("3.30")
    assert days.loc[D1.isoformat(), "basis"] == "billed"
    assert days.loc[D2.isoformat(), "cost_usd"] == Decimal("4.375")  # 3.25 + 1.125
    assert days.loc[D2.isoformat(), "basis"] == "estimated"
    assert days.loc[D2.isoformat(), "unpriced_models"] == "mystery-model-1"
    month = spend_with_estimates(store, SYSTEM, "month")
    assert month["cost_usd"].tolist() == [Decimal("7.675")]
    assert month["basis"].tolist() == ["mixed"]


def test_keeps_spends_columns_and_tokens(store):
    plain = spend(store, SYSTEM, ["project", "model"])
    filled = spend_with_estimates(store, SYSTEM, ["project", "model"])
    assert list(filled.columns) == [*plain.columns, "unpriced_models", "basis"]
    assert filled["input_tokens"].tolist() == plain["input_tokens"].tolist()
    assert all(isinstance(v, Decimal) for v in filled["cost_usd"] if v is not None)


def test_billed_figures_are_left_exactly_as_billed(store):
    filled = spend_with_estimates(store, SYSTEM, ["day", "project"])
    billed = filled[filled["basis"] == "billed"]
    assert billed[["day", "project"]].values.tolist() == [[D1.isoformat(), PROD]]
    assert billed["cost_usd"].tolist() == [Decimal("3.30")]


def test_scope_limits_the_estimates(store):
    scoped = Principal("sam", "reader", frozenset({BATCH}))
    frame = spend_with_estimates(store, scoped, "model")
    assert frame["model"].tolist() == [MINI]
    assert frame["cost_usd"].tolist() == [Decimal("1.125")]


def test_date_filter_applies_to_estimates(store):
    frame = spend_with_estimates(store, SYSTEM, "project", start=D1, end=D1)
    assert frame["project"].tolist() == [PROD]
    assert frame["basis"].tolist() == ["billed"]


def test_empty_store_gives_an_empty_frame(engine):
    frame = spend_with_estimates(engine, SYSTEM, "project")
    assert frame.empty and "basis" in frame.columns


def test_unpriced_usage_lists_the_unknown_model(store):
    missing = unpriced_usage(store, SYSTEM)
    assert missing["model"].tolist() == ["mystery-model-1"]
    assert missing["input_tokens"].tolist() == [500]
    assert "no openai price for model family 'mystery-model-1'" in missing["reason"][0]


def test_sample_usage_only_estimates_match_truth_within_half_a_percent(engine):
    folder = import_sample(engine, "completions_usage_*.csv")
    truth = json.loads((folder / "truth.json").read_text())["truth_completions_only"]
    frame = _by(spend_with_estimates(engine, SYSTEM, "project"), "project")
    assert set(frame["basis"]) == {"estimated"}
    assert set(frame.index) == set(truth["by_project"])
    for project, dollars in truth["by_project"].items():
        assert float(frame.loc[project, "cost_usd"]) == pytest.approx(dollars, rel=0.005)


def test_unpriced_usage_follows_imports_and_prices(store, tmp_path):
    """Kept per data version and price book: a new import and a new price are seen at once."""
    assert unpriced_usage(store, SYSTEM)["model"].tolist() == ["mystery-model-1"]
    import_exports(store, tmp_path / "more", [usage(D3, RESEARCH, "enigma-2", 700, 0, 70)], [])
    assert unpriced_usage(store, SYSTEM)["model"].tolist() == ["enigma-2", "mystery-model-1"]
    add_price(store, SYSTEM, {"provider": "openai", "family": "mystery-model-1",
                              "effective_from": D1.isoformat(), "input_per_1m": "1",
                              "output_per_1m": "2"})
    assert unpriced_usage(store, SYSTEM)["model"].tolist() == ["enigma-2"]


def test_unpriced_usage_finds_odd_counts_and_days_before_a_price(engine, tmp_path):
    """Usage is read only where it may be unpriced; these two kinds hide among priced models."""
    import_exports(engine, tmp_path, [
        usage(D1, PROD, GPT4O, 100, 200, 10),  # more cached than input tokens
        usage(D2, PROD, GPT4O, 100, 50, 10),
        usage(D1, BATCH, "enigma-2", 300, 0, 30),  # priced from D2 on
        usage(D2, BATCH, "enigma-2", 300, 0, 30),
    ], [])
    add_price(engine, SYSTEM, {"provider": "openai", "family": "enigma-2",
                               "effective_from": D2.isoformat(), "input_per_1m": "1",
                               "output_per_1m": "2"})
    missing = unpriced_usage(engine, SYSTEM).set_index("model")
    assert missing.loc[GPT4O, "reason"] == "cached tokens exceed input tokens"
    assert missing.loc["enigma-2", "reason"] == "no price for enigma-2 in effect on 2026-09-01"
    assert missing["input_tokens"].to_dict() == {"enigma-2": 300, GPT4O: 100}
    assert (missing["first_day"] == D1).all() and (missing["last_day"] == D1).all()


def test_unpriced_model_names_are_listed_once_and_sorted(store, tmp_path):
    import_exports(store, tmp_path / "more", [
        usage(D3, RESEARCH, "zeta-model", 500, 0, 50),
        usage(D3, RESEARCH, "enigma-2", 500, 0, 50)], [])
    frame = _by(spend_with_estimates(store, SYSTEM, "project"), "project")
    assert frame.loc[RESEARCH, "unpriced_models"] == "enigma-2,mystery-model-1,zeta-model"
    keys = spend_with_estimates(store, SYSTEM, "api_key").set_index("api_key")
    assert keys.loc["key_" + RESEARCH, "unpriced_models"] == "enigma-2,mystery-model-1,zeta-model"


# --- every grouping adds up to the same bill ----------------------------------------------

def _import(engine, files: dict[str, str]) -> None:
    from analytics.ingest import import_sources

    results = import_sources(engine, [(name, text.encode()) for name, text in files.items()])
    assert all(r.ok for r in results), [r.error for r in results]


def _usage_and_cost(engine, usage_rows: list, cost_rows: list) -> None:
    from tests.test_import_errors import COST_HEADER_V1, USAGE_HEADER, csv_text

    _import(engine, {"usage.csv": csv_text(USAGE_HEADER, usage_rows),
                     "cost.csv": csv_text(COST_HEADER_V1, cost_rows)})


def _total(frame) -> Decimal:
    return sum((c for c in frame["cost_usd"] if c is not None), Decimal(0))


GROUPINGS = ("project", "day", "month", "model", "provider", "api_key", "user")


def test_a_day_missing_one_projects_cost_is_estimated_in_every_grouping(engine):
    """Project b's cost for day 2 has not arrived: its usage is estimated whether the
    report is by project, by day or by model, so all of them add up to the same total."""
    from tests.test_import_errors import DAY, cost_row, usage_row

    day2 = DAY + timedelta(days=1)
    _usage_and_cost(engine, [
        usage_row(DAY, project="proj_a", key="key_a"),
        usage_row(DAY, project="proj_b", key="key_b"),
        usage_row(day2, project="proj_a", key="key_a"),
        usage_row(day2, project="proj_b", key="key_b", input_tokens="300000.0"),
    ], [cost_row(DAY, "1.00", project="proj_a"), cost_row(DAY, "2.00", project="proj_b"),
        cost_row(day2, "1.00", project="proj_a")])
    by_project = _by(spend_with_estimates(engine, SYSTEM, "project"), "project")
    estimate_b = by_project.loc["proj_b", "cost_usd"] - Decimal("2.00")
    assert estimate_b > 0 and by_project.loc["proj_b", "basis"] == "mixed"
    by_day = _by(spend_with_estimates(engine, SYSTEM, "day"), "day")
    assert by_day.loc[str(day2), "cost_usd"] == Decimal("1.00") + estimate_b
    assert by_day.loc[str(day2), "basis"] == "mixed"
    totals = {by: _total(spend_with_estimates(engine, SYSTEM, by)) for by in GROUPINGS}
    assert set(totals.values()) == {Decimal("4.00") + estimate_b}, totals


def test_a_keys_share_of_its_projects_bill_does_not_depend_on_the_filter(engine):
    """Cost exports give no key: each project's bill is shared among its own keys, so the
    keys of a project add up to its bill, with or without a project filter."""
    from tests.test_import_errors import DAY, cost_row, usage_row

    _usage_and_cost(engine, [
        usage_row(DAY, project="proj_a", key="key_a1", input_tokens="1000.0"),
        usage_row(DAY, project="proj_a", key="key_a2", input_tokens="9000.0"),
        usage_row(DAY, project="proj_b", key="key_b1", input_tokens="50000.0"),
        usage_row(DAY, project="proj_b", key="key_b2", input_tokens="1000.0"),
    ], [cost_row(DAY, "4.00", project="proj_a"), cost_row(DAY, "10.00", project="proj_b")])
    everyone = _by(spend_with_estimates(engine, SYSTEM, "api_key"), "api_key")
    only_a = _by(spend_with_estimates(engine, SYSTEM, "api_key", project="proj_a"), "api_key")
    assert set(only_a.index) == {"key_a1", "key_a2"}
    for key in only_a.index:
        assert only_a.loc[key, "cost_usd"] == everyone.loc[key, "cost_usd"], key
        assert everyone.loc[key, "basis"] == "allocated"
    for project, bill in (("a", "4.00"), ("b", "10.00")):
        shared = sum(everyone.loc[[f"key_{project}1", f"key_{project}2"], "cost_usd"])
        assert abs(shared - Decimal(bill)) < Decimal("1e-8"), (project, shared)
    assert everyone.loc["key_a2", "cost_usd"] > everyone.loc["key_a1", "cost_usd"]


def test_an_org_level_bill_is_shared_by_the_projects_and_never_added_to(engine):
    """A cost export not grouped by project bills day 1 for the whole org: no project's
    usage is estimated on top of it; by project, the bill is shared by estimates."""
    from tests.test_import_errors import DAY, cost_row, usage_row

    _usage_and_cost(engine, [
        usage_row(DAY, project="proj_a", key="key_a", input_tokens="1000.0"),
        usage_row(DAY, project="proj_b", key="key_b", input_tokens="3000.0"),
    ], [cost_row(DAY, "8.00", project="")])
    for by in ("day", "model", "provider"):
        frame = spend_with_estimates(engine, SYSTEM, by)
        assert _total(frame) == Decimal("8.00") and set(frame["basis"]) == {"billed"}, by
    for by in ("project", "api_key", "user"):
        frame = spend_with_estimates(engine, SYSTEM, by)
        assert abs(_total(frame) - Decimal("8.00")) < Decimal("1e-8"), by
        assert set(frame["basis"]) == {"allocated"}, (by, frame)
    by_project = _by(spend_with_estimates(engine, SYSTEM, "project"), "project")
    assert list(by_project.index) == ["proj_a", "proj_b"], "sorted; no (no project) row left"
    assert by_project.loc["proj_b", "cost_usd"] > by_project.loc["proj_a", "cost_usd"]
