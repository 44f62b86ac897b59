from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics.budgets import (
    DEFAULT_THRESHOLDS,
    Budget,
    BudgetError,
    Period,
    Threshold,
    budget_status,
    limit_consequence,
    period_containing,
    previous_period,
)
from analytics.forecast import ForecastResult


def P(a: str, b: str) -> Period:
    return Period(date.fromisoformat(a), date.fromisoformat(b))


# --- periods -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "day, expected",
    [
        ("2026-03-02", P("2026-02-15", "2026-03-14")),
        ("2026-03-14", P("2026-02-15", "2026-03-14")),
        ("2026-03-15", P("2026-03-15", "2026-04-14")),
        ("2026-01-03", P("2025-12-15", "2026-01-14")),  # crosses the year
    ],
)
def test_billing_anniversary_on_the_15th(day, expected):
    assert period_containing(date.fromisoformat(day), "month", anchor_day=15) == expected


@pytest.mark.parametrize(
    "day, expected",
    [
        ("2026-02-27", P("2026-01-31", "2026-02-27")),  # February has no 31st: clamp to 28th
        ("2026-02-28", P("2026-02-28", "2026-03-30")),
        ("2026-03-31", P("2026-03-31", "2026-04-29")),  # back on the 31st where it exists
        ("2026-04-30", P("2026-04-30", "2026-05-30")),  # April has no 31st
    ],
)
def test_anchor_31_clamps_per_month(day, expected):
    assert period_containing(date.fromisoformat(day), "month", anchor_day=31) == expected


def test_leap_year_2028():
    assert period_containing(date(2028, 2, 28), "month", 31) == P("2028-01-31", "2028-02-28")
    assert period_containing(date(2028, 2, 29), "month", 31) == P("2028-02-29", "2028-03-30")
    assert period_containing(date(2028, 2, 29), "month", 30) == P("2028-02-29", "2028-03-29")
    assert period_containing(date(2028, 2, 10), "month").days == 29
    assert period_containing(date(2028, 7, 1), "year").days == 366


@pytest.mark.parametrize(
    "day, kind, anchor, expected",
    [
        ("2026-05-20", "quarter", 1, P("2026-04-01", "2026-06-30")),
        ("2026-01-10", "quarter", 15, P("2025-10-15", "2026-01-14")),
        ("2026-04-05", "quarter", 31, P("2026-01-31", "2026-04-29")),
        ("2026-06-01", "year", 1, P("2026-01-01", "2026-12-31")),
        ("2026-01-10", "year", 15, P("2025-01-15", "2026-01-14")),
    ],
)
def test_quarter_and_year(day, kind, anchor, expected):
    assert period_containing(date.fromisoformat(day), kind, anchor) == expected


def test_previous_period():
    assert previous_period(P("2026-03-31", "2026-04-29"), "month", 31) == P(
        "2026-02-28", "2026-03-30"
    )
    assert previous_period(P("2026-01-01", "2026-03-31"), "quarter") == P(
        "2025-10-01", "2025-12-31"
    )


@given(
    day=st.dates(date(2000, 1, 1), date(2099, 12, 31)),
    kind=st.sampled_from(["month", "quarter", "year"]),
    anchor=st.integers(1, 31),
)
def test_periods_tile_the_calendar(day, kind, anchor):
    p = period_containing(day, kind, anchor)
    assert p.start <= day <= p.end
    assert previous_period(p, kind, anchor).end == p.start - timedelta(days=1)
    assert period_containing(p.end + timedelta(days=1), kind, anchor).start > p.end
    assert 28 <= p.days <= {"month": 31, "quarter": 92, "year": 366}[kind]


@pytest.mark.parametrize("kind, anchor", [("week", 1), ("month", 0), ("month", 32)])
def test_bad_period_definitions_are_user_errors(kind, anchor):
    with pytest.raises(ValueError):
        period_containing(date(2026, 1, 1), kind, anchor)


# --- budgets -----------------------------------------------------------------------------


def test_budget_validation_and_reserve():
    b = Budget("Prod", Decimal("1000"), scope="project:proj_1", reserve_pct=Decimal("10"))
    assert b.allocatable == Decimal("900")
    assert b.thresholds == DEFAULT_THRESHOLDS
    for bad in (
        dict(amount=Decimal("0")),
        dict(scope="team:x"),
        dict(scope="project:"),
        dict(limit="firm"),
        dict(thresholds=(Threshold(50, "a"), Threshold(50, "b"))),
        dict(reserve_pct=Decimal("100")),
    ):
        with pytest.raises(BudgetError):
            Budget("Bad", **{"amount": Decimal("10"), **bad})


def test_limit_consequences_differ_in_words():
    assert "nothing is stopped" in limit_consequence("soft")
    assert "switched off" in limit_consequence("hard")
    with pytest.raises(BudgetError):
        limit_consequence("firm")


NOV = P("2026-11-01", "2026-11-30")


def fake_forecast(actual: float, daily_rest: float, samples: list[float]) -> ForecastResult:
    """A forecast as of Nov 10 that spends `daily_rest` on each of the 20 remaining days."""
    days = pd.date_range("2026-11-11", "2026-11-30")
    cumulative = actual + daily_rest * np.arange(1, 21)
    return ForecastResult(
        period_start=NOV.start,
        period_end=NOV.end,
        as_of=date(2026, 11, 10),
        actual_to_date=actual,
        forecast=float(cumulative[-1]),
        low=float(cumulative[-1]) * 0.9,
        high=float(cumulative[-1]) * 1.1,
        method="test",
        rough=False,
        samples=np.array(samples),
        daily_path=pd.DataFrame(
            {
                "ds": days,
                "expected_cumulative": cumulative,
                "low_cumulative": cumulative,
                "high_cumulative": cumulative,
            }
        ),
    )


def test_thresholds_crossed_by_actual_versus_forecast():
    budget = Budget("Org", Decimal("1000"))
    # $600 spent; 20 days at $17.50 more lands at $950.
    status = budget_status(budget, fake_forecast(600, 17.5, [900, 950, 1000, 1001, 1200]))
    assert [t.pct for t in status.crossed_actual] == [50]
    assert [t.pct for t in status.crossed_forecast] == [75, 90]
    assert status.headroom_usd == pytest.approx(50.0)
    assert status.p_over_budget == pytest.approx(2 / 5)  # 1000 itself is not over
    assert status.breach_date is None and not status.over_budget
    assert [(a.basis, a.threshold_pct, a.level) for a in status.alerts] == [
        ("actual", 50, "critical"),
        ("forecast", 75, "warning"),
        ("forecast", 90, "warning"),
    ]
    # 600 + 17.5 * 9 = 757.5 is the first day at or above $750: the 9th remaining day.
    assert "around 2026-11-19" in status.alerts[1].message
    assert "page on-call" in status.alerts[1].message


def test_forecast_breach_on_a_hard_limit():
    budget = Budget("Org", Decimal("1000"), limit="hard")
    # $700 spent; $20 a day goes over $1,000 on the 16th remaining day (700 + 320 = 1020).
    status = budget_status(budget, fake_forecast(700, 20, [1100, 900]))
    assert status.breach_date == date(2026, 11, 26)
    assert status.headroom_usd == pytest.approx(-100.0)
    last = status.alerts[-1]
    assert (last.level, last.threshold_pct, last.basis) == ("critical", 100, "forecast")
    assert "switched off" in last.message


def test_already_over_budget():
    status = budget_status(Budget("Org", Decimal("500")), fake_forecast(600, 10, [800]))
    assert status.over_budget and status.breach_date is None
    assert [t.pct for t in status.crossed_actual] == [50, 75, 90]
    assert status.crossed_forecast == ()
    assert status.alerts[-1].basis == "actual" and status.alerts[-1].threshold_pct == 100


def test_forecast_for_another_period_is_refused():
    with pytest.raises(BudgetError):
        budget_status(Budget("Q", Decimal("100"), kind="quarter"), fake_forecast(1, 1, [1]))


def test_p_over_budget_is_the_share_of_simulated_totals_over_the_amount():
    from analytics.forecast import forecast_period_end

    # $100 a day in February, spiky March days: the runrate band resamples them.
    feb = pd.Series(100.0, index=pd.date_range("2026-02-01", "2026-02-28"))
    march = pd.Series(
        [50.0, 400.0, 80.0, 120.0, 60.0], index=pd.date_range("2026-03-01", periods=5)
    )
    r = forecast_period_end(
        pd.concat([feb, march]), P("2026-03-01", "2026-03-31"), date(2026, 3, 5), "runrate"
    )
    assert r.forecast == pytest.approx(710.0 / 5 * 31)
    budget = Budget("Org", Decimal("4000"))
    over = sum(1 for total in r.samples if total > 4000)
    status = budget_status(budget, r)
    assert status.p_over_budget == pytest.approx(over / len(r.samples))
    assert 0 < status.p_over_budget < 1  # the mean is $142/day: $4,402 expected, spread wide
