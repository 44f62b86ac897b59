"""The planning service on the demo organisation: actuals and weights against the simulation's
own truth, probabilities against a direct count over the same samples, and the Allocation
page agreeing with ``python -m analytics allocate`` to the cent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal as D
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from analytics import auth, planning
from analytics.access import SYSTEM, Principal
from analytics.allocation import Plan, PlanError, Share, preset_plan
from analytics.budgets import Period
from analytics.cli import main
from analytics.demo import DEMO_PROJECTS, SimOrg, load_demo, simulate
from analytics.org import label_project
from analytics.series import bump_data_version
from analytics.store import dispose_engine, get_engine
from tests.helpers import open_app

APP = str(Path(__file__).resolve().parent.parent / "app.py")
ENV_OF = {p.project_id: p.environment for p in DEMO_PROJECTS}
PRESET_SPLIT = "dev=20,staging=10,prod=60,analytics=10"
# 12 days (Sep 25 - Oct 6): short enough for quick forecasts, and it reaches back into the
# previous quarter (Jul - Sep), so Proportional shares have last quarter's spend to go by.
SHORT = (12, date(2026, 10, 6))
LONG = (120, date(2026, 11, 20))


@dataclass(frozen=True)
class Demo:
    engine: Engine
    url: str
    org: SimOrg  # the simulated truth the store was loaded from

    @property
    def as_of(self) -> date:
        return self.org.end


def make_demo(tmp_path_factory: pytest.TempPathFactory, days: int, end: date) -> Iterator[Demo]:
    """A demo store with the app's users; the truth comes from the same seeded simulation."""
    url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'burnrate.db'}"
    engine = get_engine(url)
    load_demo(engine, days=days, end=end)
    for user, role in (("olivia", "owner"), ("mark", "member"), ("rita", "reader")):
        auth.add_user(engine, user, user.title(), f"{user}@example.com", f"{user}-pass-1", role)
    yield Demo(engine, url, simulate(days=days, end=end))
    dispose_engine(url)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Iterator[Demo]:
    yield from make_demo(tmp_path_factory, *SHORT)


@pytest.fixture(scope="module")
def long_demo(tmp_path_factory) -> Iterator[Demo]:
    yield from make_demo(tmp_path_factory, *LONG)


def env_truth(org: SimOrg, start: date, end: date) -> dict[str, D]:
    """Billed dollars per environment between two days, from the simulation itself."""
    totals: dict[str, D] = {}
    for (day, project, *_), (amount, _) in org.cost.items():
        if start <= day <= end:
            env = ENV_OF[project]
            totals[env] = totals.get(env, D(0)) + amount
    return totals


def logged_in(demo: Demo, monkeypatch: pytest.MonkeyPatch, user: str) -> AppTest:
    """The Allocation page as ``user`` sees it on the demo store."""
    monkeypatch.setenv("BURNRATE_DB_URL", demo.url)
    monkeypatch.setenv("BURNRATE_COOKIE_KEY", "test-only-key-" + "x" * 40)
    return open_app(user, "pages/allocation.py")


def page_table(at: AppTest, column: str) -> pd.DataFrame:
    """The page's table that has ``column``."""
    found = [d.value for d in at.dataframe if column in d.value.columns]
    assert len(found) == 1, [list(d.value.columns) for d in at.dataframe]
    return found[0]


# --------------------------------------------------------------------------- environments


@pytest.mark.parametrize(("typed", "known", "expected"), [
    ("dev", [], "Development"),
    ("PROD", [], "Production"),
    ("staging", [], "Staging"),
    ("analytics", [], "Analytics"),
    ("production", [], "Production"),
    ("marketing", ["Marketing"], "Marketing"),
])
def test_resolve_environment(typed, known, expected):
    assert planning.resolve_environment(typed, known) == expected


def test_an_unknown_environment_is_refused_with_the_choices():
    with pytest.raises(PlanError, match="Unknown environment 'stage'.*Analytics, Development"):
        planning.resolve_environment("stage", ["Development"])


def test_suggest_environments_fills_only_empty_ones():
    table = pd.DataFrame({
        "provider": ["openai"] * 5,
        "project_id": ["p1", "p2", "p3", "proj_stg", "p5"],
        "name": ["prod-api", "etl nightly", "product-search", None, "sandbox"],
        "environment": [None, "", None, None, "Production"],
    })
    filled = planning.suggest_environments(table)
    assert [None if pd.isna(e) else e for e in filled["environment"]] == [
        "Production", "Analytics", None, "Staging", "Production"]
    assert pd.isna(table["environment"].iloc[0])  # the input is left alone


# --------------------------------------------------------------------------- the outlook


def test_actuals_and_last_quarters_weights_are_the_simulated_truth(demo):
    view = planning.outlook(demo.engine, SYSTEM, demo.as_of)
    assert view.period == Period(date(2026, 10, 1), date(2026, 10, 31))
    assert view.fraction_elapsed == pytest.approx(6 / 31)
    assert view.weights_period == Period(date(2026, 7, 1), date(2026, 9, 30))
    spent = env_truth(demo.org, date(2026, 10, 1), demo.as_of)
    last_quarter = env_truth(demo.org, date(2026, 7, 1), date(2026, 9, 30))
    assert sorted(view.environments) == sorted(spent)
    for env in spent:
        assert view.env_inputs[env].actual_to_date == pytest.approx(float(spent[env]), abs=0.006)
        assert abs(view.weights[env] - last_quarter[env]) < D("0.01")
    production = view.env_inputs["Production"]
    assert production.projects == ["proj_demoMarketing000005", "proj_demoProduction000003"]
    # the expected path starts with the actual days and ends at the forecast
    assert production.daily_expected_path[0][0] == date(2026, 10, 1)
    assert production.daily_expected_path[5][1] == pytest.approx(production.actual_to_date,
                                                                  abs=0.006)
    assert production.daily_expected_path[-1] == (date(2026, 10, 31),
                                                  pytest.approx(production.forecast, abs=0.006))


def test_outlook_is_remembered_and_recomputed_the_same_after_a_data_change(demo):
    first = planning.outlook(demo.engine, SYSTEM, demo.as_of)
    assert planning.outlook(demo.engine, SYSTEM, demo.as_of) is first
    with demo.engine.begin() as conn:
        bump_data_version(conn)
    again = planning.outlook(demo.engine, SYSTEM, demo.as_of)
    assert again is not first
    for env in first.environments:  # seeded forecasts: the same samples, scenario by scenario
        np.testing.assert_array_equal(again.env_inputs[env].samples,
                                      first.env_inputs[env].samples)


def test_relabelling_a_project_moves_its_spend_out_of_the_plan(demo):
    marketing = "proj_demoMarketing000005"
    owner = Principal("olivia", "owner")
    before = planning.outlook(demo.engine, SYSTEM, demo.as_of)
    label_project(demo.engine, owner, "openai", marketing, "Marketing", None)
    try:
        after = planning.outlook(demo.engine, SYSTEM, demo.as_of)
        moved = next(p for p in before.projects if p.project_id == marketing).actual
        assert after.env_inputs["Production"].actual_to_date == pytest.approx(
            before.env_inputs["Production"].actual_to_date - moved, abs=0.011)
        flags = planning.review_plan(preset_plan(D(1000)), after).flags
        assert any("without an environment (Marketing)" in f for f in flags)
    finally:
        label_project(demo.engine, owner, "openai", marketing, "Marketing", "Production")


def test_a_scoped_reader_sees_only_their_environment(demo):
    sam = Principal("sam", "reader", frozenset({"proj_demoStaging000000002"}))
    view = planning.outlook(demo.engine, sam, demo.as_of)
    assert view.environments == ["Staging"]
    assert [p.name for p in view.projects] == ["Staging"]
    flags = planning.review_plan(preset_plan(D(1000)), view).flags
    assert "You see only some projects: actuals and forecasts cover those alone" in flags


# --------------------------------------------------------------------------- judging a plan


def test_preset_review_against_a_direct_count(demo):
    view = planning.outlook(demo.engine, SYSTEM, demo.as_of)
    result = planning.review_plan(preset_plan(D(1000)), view)
    expected = {"Development": D(180), "Staging": D(90), "Production": D(540),
                "Analytics": D(90), "Reserve": D(100)}
    assert result.allocations == expected
    samples = view.samples(list(expected)[:4])
    for status in result.statuses:
        count = np.mean(samples[status.environment] > float(expected[status.environment]))
        assert status.p_overrun == pytest.approx(count)
    soft_excess = sum(np.maximum(samples[env] - float(expected[env]), 0)
                      for env in ("Production", "Analytics"))
    assert result.reserve.p_exhausted == pytest.approx(np.mean(soft_excess > 100))
    assert result.reserve.expected_use == pytest.approx(np.mean(soft_excess))


def test_fixed_even_and_proportional_shares_use_last_quarters_spend(demo):
    view = planning.outlook(demo.engine, SYSTEM, demo.as_of)
    plan = Plan("Mixed", D(1000), D(10), [
        Share("Development", "fixed", D(100), "hard"),
        Share("Staging", "even", None, "hard"),
        Share("Production", "proportional", None, "soft"),
        Share("Analytics", "proportional", None, "soft"),
    ])
    weights = env_truth(demo.org, date(2026, 7, 1), date(2026, 9, 30))
    # $900 after the reserve, $100 fixed: $800 in three slots; the two proportional slots
    # ($533.33) are split by last quarter's spend.
    pool = D(1600) / 3
    production = pool * weights["Production"] / (weights["Production"] + weights["Analytics"])
    got = planning.review_plan(plan, view).allocations
    assert got["Development"] == D(100)
    assert abs(got["Staging"] - D(800) / 3) <= D("0.01")
    assert abs(got["Production"] - production) <= D("0.01")
    assert abs(got["Analytics"] - (pool - production)) <= D("0.01")
    assert sum(got.values()) == D(1000)


def test_a_plan_without_an_environment_that_spends_is_refused(demo):
    view = planning.outlook(demo.engine, SYSTEM, demo.as_of)
    plan = Plan("Two", D(1000), D(10), [Share("Production", "percent", D(80), "soft"),
                                         Share("Development", "percent", D(20), "hard")])
    with pytest.raises(PlanError, match="Spend was given for Analytics and Staging"):
        planning.review_plan(plan, view)


@pytest.mark.parametrize("split", [
    {"Development": 20, "Staging": 10, "Production": 60, "Analytics": 10},
    {"Development": 8, "Staging": 2, "Production": 74, "Analytics": 16},
    {"Development": 10, "Staging": 1, "Production": 70, "Analytics": 15},
])
def test_simulation_within_two_points_of_a_direct_count(demo, split):
    view = planning.outlook(demo.engine, SYSTEM, demo.as_of)
    limits = {"Development": "hard", "Staging": "hard", "Production": "soft",
              "Analytics": "soft"}
    sim = planning.simulate_split(view, split, 1300, 10, limits)
    samples = view.samples(list(split))
    allocation = {env: 1170 * pct / 100 for env, pct in split.items()}  # $1,300 less 10%
    over = {env: samples[env] > allocation[env] for env in split}
    for env in split:
        assert abs(sim.p_overrun[env] - over[env].mean()) <= 0.02
    assert abs(sim.p_any_hard_cutoff - (over["Development"] | over["Staging"]).mean()) <= 0.02
    assert any(0.05 < p < 0.95 for p in sim.p_overrun.values())  # not a trivial 0 or 1


def test_suggested_split_is_no_worse_than_the_preset(demo):
    view = planning.outlook(demo.engine, SYSTEM, demo.as_of)
    limits = {"Development": "hard", "Staging": "hard", "Production": "soft",
              "Analytics": "soft"}
    envs = list(limits)
    suggested = planning.suggest(view, envs, 1300, 10, limits)
    assert sum(suggested.values()) == pytest.approx(100)
    preset = planning.simulate_split(view, dict(zip(envs, (20, 10, 60, 10), strict=True)),
                                     1300, 10, limits)
    best = planning.simulate_split(view, suggested, 1300, 10, limits)
    assert 0 < preset.p_any_hard_cutoff
    assert best.p_any_hard_cutoff < preset.p_any_hard_cutoff


# --------------------------------------------------------------------------- page == CLI


def _page_and_cli_agree(demo: Demo, monkeypatch, capsys) -> None:
    view = planning.outlook(demo.engine, SYSTEM, demo.as_of)
    # a budget whose Production share (54% of it) is about its forecast, so chances are not 0/1
    total = round(view.env_inputs["Production"].forecast / 0.54)
    at = logged_in(demo, monkeypatch, "olivia")
    assert not at.exception, at.exception
    budget = next(n for n in at.number_input if n.label.startswith("Budget"))
    budget.set_value(float(total)).run()
    assert not at.exception, at.exception
    envs_shown = page_table(at, "p_overrun")  # environments, then their projects
    projects_shown = page_table(at, "project")

    assert main(["allocate", "--db", demo.url, "--total", str(total), "--split", PRESET_SPLIT,
                 "--reserve", "10", "--as-of", demo.as_of.isoformat(), "--format", "json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    rows = cli["environments"]
    env_rows = [r for r in rows if r["level"] == "environment"]
    project_rows = [r for r in rows if r["level"] == "project"]
    assert len(envs_shown) == len(env_rows) == 4
    assert len(projects_shown) == len(project_rows) == len(DEMO_PROJECTS)
    figures = ("actual_to_date", "forecast", "low", "high")
    for (_, shown), printed in zip(envs_shown.iterrows(), env_rows, strict=True):
        assert shown["environment"] == printed["environment"]
        for column in ("allocation", *figures, "p_overrun"):
            assert shown[column] == printed[column], (column, shown[column], printed[column])
        hits = printed["hits_allocation_on"]
        assert shown["hits_allocation_on"] == (hits or "not forecast to")
    for (_, shown), printed in zip(projects_shown.iterrows(), project_rows, strict=True):
        assert shown["environment"] == (printed["environment"] or "(no environment)")
        assert shown["project"] == printed["project"]
        for column in figures:
            assert shown[column] == printed[column], (column, shown[column], printed[column])
    assert any(row["p_overrun"] not in (None, 0.0, 1.0) for row in rows)  # a real comparison

    # the page's simulation of its split, against a direct count over the same samples
    simulated = page_table(at, "Chance of overrun")
    for _, row in simulated.iterrows():
        samples = view.env_inputs[row["Environment"]].samples
        direct = np.mean(samples > total * 0.9 * row["Share"])
        assert abs(row["Chance of overrun"] - direct) <= 0.02


def test_page_and_cli_agree_on_the_demo(demo, monkeypatch, capsys):
    _page_and_cli_agree(demo, monkeypatch, capsys)


@pytest.mark.slow
def test_page_and_cli_agree_on_a_long_demo_with_full_forecasts(long_demo, monkeypatch, capsys):
    assert not planning.outlook(long_demo.engine, SYSTEM, long_demo.as_of).rough
    _page_and_cli_agree(long_demo, monkeypatch, capsys)
