"""Forecasts of the store's spend for the org, a project or an environment, cached.

``forecast.py`` is pure maths on a daily series; this module feeds it the store's billed
spend for a scope, in the org's billing calendar, and remembers the answer. A forecast costs
seconds (Prophet fits), and the Forecast page, the budget check and the CLI ask for the same
ones, so results are kept in a small in-process LRU keyed by the store's data version: an
import changes the version, so nothing stale is ever served and nothing is recomputed
before. The key also holds the principal's scope, so a forecast is never shared between
users who see different projects. (Not ``st.cache``: the CLI and cron use this too.)

The forecast is made "as of" the last day with billed cost, not today: cost exports arrive
days late, and days not yet exported are unknown, not $0.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from datetime import date
from typing import TypeVar

import pandas as pd
from sqlalchemy import Engine

from analytics.access import Principal
from analytics.budgets import PeriodKind, period_containing
from analytics.forecast import (
    BacktestResult,
    ForecastError,
    ForecastResult,
    backtest,
    forecast_period_end,
)
from analytics.org import anchor_day as org_anchor_day
from analytics.pricing import Scenario
from analytics.queries import spend
from analytics.scenarios import ForecastEffect, effect_on
from analytics.series import daily_spend, data_version, scope_projects

CACHE_SIZE = 128
BACKTEST_PERIODS = 12

T = TypeVar("T")


class _LRU:
    """A thread-safe least-recently-used map (Streamlit runs sessions in threads)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, object] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_compute(self, key: Hashable, compute: Callable[[], T]) -> T:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]  # type: ignore[return-value]
        value = compute()  # outside the lock: two sessions may forecast different scopes
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_CACHE = _LRU(CACHE_SIZE)


def clear_cache() -> None:
    """Forget every cached forecast (tests; the data version makes it unnecessary otherwise)."""
    _CACHE.clear()


def _cached(engine: Engine, principal: Principal, what: tuple[Hashable, ...],
            compute: Callable[[], T]) -> T:
    key = (str(engine.url), data_version(engine), principal.cache_key(), *what)
    return _CACHE.get_or_compute(key, compute)


def last_billed_day(engine: Engine, principal: Principal) -> date:
    """The newest day with billed cost the principal may see: the default "as of"."""
    def compute() -> date:
        days = spend(engine, principal, "day")
        billed = days[days["cost_usd"].notna()] if not days.empty else days
        if billed.empty:
            raise ForecastError("There is no billed cost to forecast from yet: import the "
                                "providers' cost exports.")
        return pd.Timestamp(billed["day"].max()).date()

    return _cached(engine, principal, ("last_billed_day",), compute)


def _as_of(engine: Engine, principal: Principal, as_of: date | None) -> date:
    """`as_of`, or the last billed day; never later than the data (later days are unknown)."""
    last = last_billed_day(engine, principal)
    return last if as_of is None else min(as_of, last)


def forecast_scope(engine: Engine, principal: Principal, scope: str = "org",
                   as_of: date | None = None, kind: PeriodKind = "month",
                   anchor_day: int | None = None, method: str = "shipped") -> ForecastResult:
    """Period-end forecast for `scope` ("org", "project:<id>", "env:<name>").

    The period is the one of `kind` holding `as_of` in the billing calendar (`anchor_day`,
    default the org's). Only billed spend up to `as_of` is used; `as_of` defaults to, and is
    capped at, the last day with billed cost.
    """
    day = _as_of(engine, principal, as_of)
    anchor = anchor_day or org_anchor_day(engine)

    def compute() -> ForecastResult:
        period = period_containing(day, kind, anchor)
        daily = daily_spend(engine, principal, scope, end=day)
        if float(daily.sum()) == 0:
            raise ForecastError(f"There is no billed spend for {scope_label(scope)} up to "
                                f"{day.isoformat()}.")
        return forecast_period_end(daily, period, day, method)

    return _cached(engine, principal, ("forecast", scope, day, kind, anchor, method), compute)


def cumulative_actual(engine: Engine, principal: Principal, scope: str,
                      forecast: ForecastResult) -> pd.Series:
    """Spend so far in the forecast's period, cumulative per day (the chart's actual line)."""
    end = min(forecast.as_of, forecast.period_end)
    if end < forecast.period_start:
        return pd.Series(dtype="float64")
    daily = daily_spend(engine, principal, scope, start=forecast.period_start, end=end)
    return daily.cumsum()


def backtest_summary(engine: Engine, principal: Principal, scope: str = "org",
                     kind: PeriodKind = "month", anchor_day: int | None = None,
                     method: str = "shipped") -> BacktestResult:
    """How far to trust the forecast: the shipped method replayed mid-period on each of this
    scope's last (up to) 12 complete periods, using only data up to that day, against what
    was actually spent. ``.summary()`` is the sentence for the page."""
    day = last_billed_day(engine, principal)
    anchor = anchor_day or org_anchor_day(engine)

    def compute() -> BacktestResult:
        daily = daily_spend(engine, principal, scope, end=day)
        if daily.empty:
            raise ForecastError(f"There is no billed spend for {scope_label(scope)}.")
        mid = period_containing(day, kind, anchor).days // 2
        return backtest(daily, method, kind, anchor, forecast_day=mid,
                        n_periods=BACKTEST_PERIODS)

    return _cached(engine, principal, ("backtest", scope, kind, anchor, method), compute)


def scenario_forecast(engine: Engine, principal: Principal, scenario: Scenario,
                      scope: str = "org", as_of: date | None = None,
                      kind: PeriodKind = "month",
                      anchor_day: int | None = None) -> ForecastEffect:
    """The period-end forecast re-costed under a pricing scenario, beside the current one.

    Method (shown on the page): the spend still to come (forecast - spent so far, and the
    same for the band's ends) is multiplied by the scenario / baseline list-price cost of the
    scope's usage over the last 28 days to `as_of`. Spend already made is not changed.
    """
    baseline = forecast_scope(engine, principal, scope, as_of, kind, anchor_day)
    return effect_on(baseline, engine, principal, scenario,
                     project=scope_projects(engine, principal, scope))


def scope_label(scope: str) -> str:
    """"org" -> "the organisation", "project:p1" -> "project p1", "env:Dev" -> "Dev"."""
    if scope == "org":
        return "the organisation"
    kind, _, value = scope.partition(":")
    return f"project {value}" if kind == "project" else f"the {value} environment"
