"""Budgets in the store: Owner-only, audited, exact amounts, scoped listing; and thresholds
crossed by actual vs forecast spend, judged on the store's own forecast."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

from analytics import audit
from analytics.access import SYSTEM, AccessDenied, Principal
from analytics.budget_store import (
    budget_for,
    delete_budget,
    get_budget,
    list_budgets,
    save_budget,
)
from analytics.budgets import Budget, BudgetError, Threshold, budget_status
from analytics.forecasting import forecast_scope
from tests.forecast_fixtures import DEV, PROD, flat_org, load

OWNER = Principal("olivia", "owner")
MEMBER = Principal("mark", "member")
READER = Principal("rita", "reader")


@pytest.fixture
def store(engine):
    """$10/day on Dev, $30/day on Prod, 1 Aug to 14 Nov 2026."""
    load(engine, flat_org(date(2026, 8, 1), date(2026, 11, 14),
                          {DEV: Decimal("10"), PROD: Decimal("30")}))
    return engine


def test_save_and_read_back_exactly(store):
    budget = Budget("Prod quarterly", Decimal("12345.67"), kind="quarter", anchor_day=15,
                    scope=f"project:{PROD}", limit="hard",
                    thresholds=(Threshold(60, "notify"), Threshold(95, "switch keys off")),
                    reserve_pct=Decimal("12.5"))
    save_budget(store, OWNER, budget)
    assert list_budgets(store, OWNER) == [budget]
    assert get_budget(store, READER, "Prod quarterly").amount == Decimal("12345.67")


def test_only_an_owner_writes_and_every_write_is_audited(store):
    first = Budget("Org", Decimal("1000"))
    for who in (MEMBER, READER):
        with pytest.raises(AccessDenied, match="Only an Owner"):
            save_budget(store, who, first)
    save_budget(store, OWNER, first)
    with pytest.raises(BudgetError, match="exists already"):
        save_budget(store, OWNER, Budget("Org", Decimal("2000")))
    save_budget(store, OWNER, Budget("Org", Decimal("2000")), replace=True)
    with pytest.raises(AccessDenied):
        delete_budget(store, MEMBER, "Org")
    delete_budget(store, OWNER, "Org")
    assert list_budgets(store, OWNER) == []

    log = audit.entries(store, action=None)
    rows = log[log["action"].str.startswith("budget.")].iloc[::-1]
    assert list(rows["action"]) == ["budget.save", "budget.save", "budget.delete"]
    assert set(rows["username"]) == {"olivia"}
    before = [json.loads(b) if isinstance(b, str) else None for b in rows["before"]]
    after = [json.loads(a) if isinstance(a, str) else None for a in rows["after"]]
    assert before[0] is None and after[0]["amount"] == "1000"
    assert before[1]["amount"] == "1000" and after[1]["amount"] == "2000"
    assert before[2]["amount"] == "2000" and after[2] is None


@pytest.mark.parametrize("budget, message", [
    (Budget("X", Decimal("5"), scope="project:proj_nope"), "No project 'proj_nope'"),
    (Budget("X", Decimal("5"), scope="env:Prodution"), "No environment 'Prodution'"),
    (Budget(" padded", Decimal("5")), "spaces"),
    (Budget("x" * 129, Decimal("5")), "at most 128"),
])
def test_unusable_budgets_are_refused_in_words(store, budget, message):
    with pytest.raises(BudgetError, match=message):
        save_budget(store, OWNER, budget)
    assert list_budgets(store, OWNER) == []


def test_a_scoped_user_sees_only_their_projects_budgets(store):
    save_budget(store, OWNER, Budget("Org", Decimal("1000")))
    save_budget(store, OWNER, Budget("Dev", Decimal("100"), scope=f"project:{DEV}"))
    save_budget(store, OWNER, Budget("Prod", Decimal("900"), scope=f"project:{PROD}"))
    save_budget(store, OWNER, Budget("Dev env", Decimal("100"), scope="env:Development"))
    scoped = Principal("sam", "reader", frozenset({DEV}))
    assert [b.name for b in list_budgets(store, scoped)] == ["Dev"]
    assert [b.name for b in list_budgets(store, READER)] == ["Dev", "Dev env", "Org", "Prod"]
    with pytest.raises(BudgetError, match="no budget named 'Prod'"):
        get_budget(store, scoped, "Prod")


def test_budget_for_picks_the_scope_and_period_kind():
    monthly = Budget("m", Decimal("1"), scope="org")
    quarterly = Budget("q", Decimal("3"), scope="org", kind="quarter")
    dev = Budget("d", Decimal("1"), scope=f"project:{DEV}")
    budgets = [dev, monthly, quarterly]
    assert budget_for(budgets, "org") is monthly
    assert budget_for(budgets, "org", "quarter") is quarterly
    assert budget_for(budgets, f"project:{PROD}") is None


def test_thresholds_crossed_by_actual_and_by_forecast_spend(store):
    """Dev spends $10/day: $140 by 14 Nov, $300 by the 30th. A $245 budget has crossed 50%
    ($122.50) already; 75% ($183.75), 90% ($220.50) and the budget itself are forecast."""
    save_budget(store, OWNER, Budget("Dev", Decimal("245"), scope=f"project:{DEV}"))
    budget = get_budget(store, OWNER, "Dev")
    status = budget_status(budget, forecast_scope(store, SYSTEM, budget.scope))
    assert status.actual_usd == 140.0
    assert [t.pct for t in status.crossed_actual] == [50]
    assert [t.pct for t in status.crossed_forecast] == [75, 90]
    assert not status.over_budget
    # $10/day: $240 on the 24th, $250 on the 25th, the first day over $245.
    assert status.breach_date == date(2026, 11, 25)
    assert status.headroom_usd == pytest.approx(245 - 300, abs=3)
    assert [(a.basis, a.threshold_pct) for a in status.alerts] == [
        ("actual", 50), ("forecast", 75), ("forecast", 90), ("forecast", 100)]
