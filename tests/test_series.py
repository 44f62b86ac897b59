"""Daily series per scope and the data version."""

from __future__ import annotations

from datetime import date

import pytest

from analytics.access import SYSTEM
from analytics.demo import load_demo
from analytics.org import label_project
from analytics.queries import billed_cost, spend
from analytics.series import (
    bump_data_version,
    daily_spend,
    daily_spend_by_project,
    data_version,
    scope_projects,
)


def test_scopes_and_version(engine):
    before = data_version(engine)
    load_demo(engine, days=40, end=date(2026, 10, 31))
    after = data_version(engine)
    assert after != before
    org = daily_spend(engine, SYSTEM, "org")
    assert len(org) == 40 and org.index[0] == date(2026, 9, 22)
    prod = daily_spend(engine, SYSTEM, "env:Production")
    # Production and Marketing are both labelled Production in the demo
    assert sorted(scope_projects(engine, SYSTEM, "env:Production")) == [
        "proj_demoMarketing000005", "proj_demoProduction000003"]
    dev = daily_spend(engine, SYSTEM, "project:proj_demoDevelopment00001")
    assert 0 < prod.sum() < org.sum() and 0 < dev.sum() < org.sum()
    with pytest.raises(ValueError):
        scope_projects(engine, SYSTEM, "team:x")
    with engine.begin() as conn:
        bump_data_version(conn)
    assert data_version(engine) != after
    bumped = data_version(engine)
    label_project(engine, SYSTEM, "openai", "proj_demoMarketing000005", None, "Marketing")
    assert data_version(engine) != bumped, "a new environment must not reuse cached figures"
    assert sorted(scope_projects(engine, SYSTEM, "env:Production")) == [
        "proj_demoProduction000003"]


def test_daily_dollars_are_the_billed_cost_and_projects_add_up_to_the_org(engine):
    """The series read the cost table alone (not usage): the same dollars `spend` reports,
    and the one-query-for-all-projects frame the Forecast page uses adds up to the org."""
    load_demo(engine, days=40, end=date(2026, 10, 31))
    both = spend(engine, SYSTEM, "day")
    billed = billed_cost(engine, SYSTEM, "day")
    assert list(billed["cost_usd"]) == list(both.loc[both["cost_usd"].notna(), "cost_usd"])
    org = daily_spend(engine, SYSTEM, "org")
    wide = daily_spend_by_project(engine, SYSTEM)
    assert list(wide.index) == list(org.index)
    assert wide.sum(axis=1).to_numpy() == pytest.approx(org.to_numpy())
    dev = "proj_demoDevelopment00001"
    assert wide[dev].to_numpy() == pytest.approx(
        daily_spend(engine, SYSTEM, f"project:{dev}").reindex(org.index, fill_value=0.0))
