"""Budget periods, thresholds and the status of a budget against a forecast.

Pure functions, no database: a budget is judged against a `ForecastResult`, so the same
logic serves the Budgets page, the CLI and the allocation module.

Periods follow the organisation's billing calendar.  With ``anchor_day=1`` they are calendar
months, quarters and years; with another anchor they run from that day of the month to the
day before it in the next period (a billing anniversary).  An anchor the month does not have
(31 in February, 30 in February, 31 in April) is clamped to the month's last day, per month,
so the next period starts on the 31st again when that month has one.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from analytics.forecast import ForecastResult

PeriodKind = Literal["month", "quarter", "year"]
LimitKind = Literal["soft", "hard"]

# The months a period of each kind can start in.
_START_MONTHS: dict[str, tuple[int, ...]] = {
    "month": tuple(range(1, 13)),
    "quarter": (1, 4, 7, 10),
    "year": (1,),
}


class BudgetError(ValueError):
    """A budget or period definition a user typed that cannot be used."""


@dataclass(frozen=True)
class Period:
    """A budget period; both ends are inclusive dates in the billing calendar."""

    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


def _check_kind_and_anchor(kind: str, anchor_day: int) -> None:
    if kind not in _START_MONTHS:
        raise BudgetError(f"A budget period is a month, quarter or year, not {kind!r}.")
    if not 1 <= anchor_day <= 31:
        raise BudgetError(f"The billing day must be between 1 and 31, not {anchor_day}.")


def _anniversary(year: int, month: int, anchor_day: int) -> date:
    """The anchor day in a month, clamped to the month's last day (31 -> Feb 28/29)."""
    return date(year, month, min(anchor_day, calendar.monthrange(year, month)[1]))


def period_containing(day: date, kind: PeriodKind, anchor_day: int = 1) -> Period:
    """The budget period of `kind` that contains `day`.

    >>> period_containing(date(2026, 3, 2), "month", anchor_day=15)
    Period(start=datetime.date(2026, 2, 15), end=datetime.date(2026, 3, 14))
    """
    _check_kind_and_anchor(kind, anchor_day)
    starts = [
        _anniversary(year, month, anchor_day)
        for year in (day.year - 1, day.year, day.year + 1)
        for month in _START_MONTHS[kind]
    ]
    # Each start is clamped within its own month, so the list is strictly increasing.
    i = max(i for i, s in enumerate(starts) if s <= day)
    return Period(starts[i], starts[i + 1] - timedelta(days=1))


def previous_period(p: Period, kind: PeriodKind, anchor_day: int = 1) -> Period:
    """The period just before `p` (same kind and anchor)."""
    return period_containing(p.start - timedelta(days=1), kind, anchor_day)


@dataclass(frozen=True)
class Threshold:
    """At `pct` percent of the budget, somebody does `action`."""

    pct: int
    action: str


DEFAULT_THRESHOLDS: tuple[Threshold, ...] = (
    Threshold(50, "notify"),
    Threshold(75, "page on-call"),
    Threshold(90, "freeze development"),
)


@dataclass(frozen=True)
class Budget:
    """A spending limit for one scope and period kind.

    `scope` is "org", "project:<id>" or "env:<name>".  `reserve_pct` is the share of the
    amount held back from environment allocations (see `allocatable`); thresholds and the
    probability of going over are judged against the whole amount.
    """

    name: str
    amount: Decimal
    kind: PeriodKind = "month"
    anchor_day: int = 1
    scope: str = "org"
    limit: LimitKind = "soft"
    thresholds: tuple[Threshold, ...] = DEFAULT_THRESHOLDS
    reserve_pct: Decimal = Decimal("0")

    def __post_init__(self) -> None:
        _check_kind_and_anchor(self.kind, self.anchor_day)
        if not isinstance(self.amount, Decimal) or self.amount <= 0:
            raise BudgetError(f"Budget {self.name!r}: the amount must be a positive number.")
        if self.limit not in ("soft", "hard"):
            raise BudgetError(f"Budget {self.name!r}: the limit is 'soft' or 'hard'.")
        prefix, _, rest = self.scope.partition(":")
        if not (self.scope == "org" or (prefix in ("project", "env") and rest)):
            raise BudgetError(
                f"Budget {self.name!r}: scope must be 'org', 'project:<id>' or 'env:<name>', "
                f"not {self.scope!r}."
            )
        if not Decimal("0") <= self.reserve_pct < Decimal("100"):
            raise BudgetError(f"Budget {self.name!r}: the reserve must be 0 to under 100%.")
        pcts = [t.pct for t in self.thresholds]
        if any(not 0 < p <= 100 for p in pcts) or len(set(pcts)) != len(pcts):
            raise BudgetError(
                f"Budget {self.name!r}: thresholds must be distinct percentages from 1 to 100."
            )

    @property
    def allocatable(self) -> Decimal:
        """The part of the amount that may be split between environments."""
        return self.amount * (Decimal("100") - self.reserve_pct) / Decimal("100")


def limit_consequence(limit: LimitKind) -> str:
    """What a soft or a hard limit means, in the words shown next to the budget."""
    if limit == "soft":
        return (
            "Soft limit: spend may go past the budget. Burnrate raises each threshold's "
            "alert and shows the overrun; nothing is stopped."
        )
    if limit == "hard":
        return (
            "Hard limit: at 100% the API keys in this scope are to be switched off until the "
            "next period or until the budget is raised, so the work they serve stops. Burnrate "
            "warns before that day; the switching off is done at the provider."
        )
    raise BudgetError(f"The limit is 'soft' or 'hard', not {limit!r}.")


@dataclass(frozen=True)
class Alert:
    level: Literal["warning", "critical"]
    threshold_pct: int
    basis: Literal["actual", "forecast"]
    message: str


@dataclass(frozen=True)
class BudgetStatus:
    """Where a budget stands: what spend has crossed and what the forecast says it will.

    `breach_date` is the first day on which the central forecast path goes over the amount
    (None when it does not, or when actual spend is already over: see `over_budget`).
    """

    budget: Budget
    period: Period
    actual_usd: float
    forecast_usd: float
    headroom_usd: float
    p_over_budget: float
    over_budget: bool
    breach_date: date | None
    crossed_actual: tuple[Threshold, ...]
    crossed_forecast: tuple[Threshold, ...]
    alerts: tuple[Alert, ...] = field(default=())


def _first_day(forecast: ForecastResult, level: float, *, reaching: bool) -> date | None:
    """First remaining day on which the central path reaches (>=) or exceeds (>) `level`."""
    cumulative = forecast.daily_path["expected_cumulative"]
    hit = forecast.daily_path[cumulative >= level if reaching else cumulative > level]
    return None if hit.empty else pd.Timestamp(hit["ds"].iloc[0]).date()


def budget_status(budget: Budget, forecast: ForecastResult) -> BudgetStatus:
    """Judge `budget` against `forecast` (which must cover one of the budget's periods)."""
    period = Period(forecast.period_start, forecast.period_end)
    if period_containing(period.start, budget.kind, budget.anchor_day) != period:
        raise BudgetError(
            f"The forecast covers {period.start} to {period.end}, which is not a period of "
            f"budget {budget.name!r}."
        )
    amount = float(budget.amount)

    def level_at(t: Threshold) -> float:
        return amount * t.pct / 100

    crossed_actual = tuple(t for t in budget.thresholds if forecast.actual_to_date >= level_at(t))
    crossed_forecast = tuple(
        t for t in budget.thresholds if t not in crossed_actual and forecast.forecast >= level_at(t)
    )
    over_budget = forecast.actual_to_date > amount
    breach_date = None if over_budget else _first_day(forecast, amount, reaching=False)
    status = BudgetStatus(
        budget=budget,
        period=period,
        actual_usd=forecast.actual_to_date,
        forecast_usd=forecast.forecast,
        headroom_usd=round(amount - forecast.forecast, 2),
        p_over_budget=float(np.mean(forecast.samples > amount)),
        over_budget=over_budget,
        breach_date=breach_date,
        crossed_actual=crossed_actual,
        crossed_forecast=crossed_forecast,
    )
    return _with_alerts(status, forecast)


def _with_alerts(status: BudgetStatus, forecast: ForecastResult) -> BudgetStatus:
    """Alerts: the highest threshold actual spend has crossed (its action is due now), each
    threshold the forecast will cross, and going over the budget itself."""
    b = status.budget
    amount = float(b.amount)
    alerts: list[Alert] = []
    if status.crossed_actual:
        t = max(status.crossed_actual, key=lambda t: t.pct)
        alerts.append(
            Alert(
                "critical",
                t.pct,
                "actual",
                f"{b.name}: spend so far is ${status.actual_usd:,.2f}, "
                f"{status.actual_usd / amount:.0%} of ${amount:,.2f}. Action: {t.action}.",
            )
        )
    for t in status.crossed_forecast:
        day = _first_day(forecast, amount * t.pct / 100, reaching=True)
        when = f" around {day.isoformat()}" if day else ""
        alerts.append(
            Alert(
                "warning",
                t.pct,
                "forecast",
                f"{b.name}: the forecast (${status.forecast_usd:,.2f}) reaches {t.pct}% of "
                f"the budget{when}. Then: {t.action}.",
            )
        )
    if status.over_budget:
        alerts.append(
            Alert(
                "critical",
                100,
                "actual",
                f"{b.name}: spend so far (${status.actual_usd:,.2f}) is over the budget of "
                f"${amount:,.2f}. {limit_consequence(b.limit)}",
            )
        )
    elif status.breach_date is not None:
        alerts.append(
            Alert(
                "critical" if b.limit == "hard" else "warning",
                100,
                "forecast",
                f"{b.name}: the forecast goes over the budget of ${amount:,.2f} around "
                f"{status.breach_date.isoformat()} (chance of ending over: "
                f"{status.p_over_budget:.0%}). {limit_consequence(b.limit)}",
            )
        )
    return replace(status, alerts=tuple(alerts))
