"""Forecasts of the store's spend for the org, a project or an environment, cached.

``forecast.py`` is pure maths on a daily series; this module feeds it the store's billed
spend for a scope, in the org's billing calendar, and remembers the answer. A forecast costs
a Prophet fit (a tenth of a second), and the Forecast page, the budget check and the CLI ask
for the same ones, so results (and the daily series behind them) are kept in an in-process
LRU keyed by the store's data version: an import changes the version, so nothing stale is
ever served and nothing is recomputed before. The key also holds the principal's scope, so a
forecast is never shared between users who see different projects. (Not ``st.cache``: the
CLI and cron use this too.) Many scopes at once (the page's one chart per project) are read
in one query and forecast in parallel, one worker process per core (``forecast_scopes``).
Users' calls are remembered (``memo.replayed``), so that after an import ``refresh`` makes
these forecasts again in the background before anyone asks.

The forecast is made "as of" the last day with billed cost, not today: cost exports arrive
days late, and days not yet exported are unknown, not $0.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from datetime import date
from typing import Any, TypeVar

import pandas as pd
from sqlalchemy import Engine

from analytics.access import Principal
from analytics.budgets import Period, PeriodKind, period_containing
from analytics.forecast import (
    BacktestResult,
    ForecastError,
    ForecastResult,
    backtest,
    forecast_period_end,
)
from analytics.memo import replayed
from analytics.org import anchor_day as org_anchor_day
from analytics.pricing import Scenario
from analytics.queries import billed_cost, visible_projects
from analytics.scenarios import ForecastEffect, effect_on
from analytics.series import daily_spend, daily_spend_by_project, data_version, scope_projects
from analytics.workers import run_all

CACHE_SIZE = 1024  # a page view of 50 projects holds ~100 entries (forecast + series each)
BACKTEST_PERIODS = 12

T = TypeVar("T")


class _LRU:
    """A thread-safe least-recently-used map (Streamlit runs sessions in threads)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any:
        """The value stored under `key` (its caller knows its type), or None."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None

    def put(self, key: Hashable, value: object) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def get_or_compute(self, key: Hashable, compute: Callable[[], T]) -> T:
        found = self.get(key)
        if found is not None:
            return found
        value = compute()  # outside the lock: two sessions may forecast different scopes
        self.put(key, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_CACHE = _LRU(CACHE_SIZE)


def clear_cache() -> None:
    """Forget every cached forecast (tests; the data version makes it unnecessary otherwise)."""
    _CACHE.clear()


def _prefix(engine: Engine, principal: Principal) -> tuple[str, str, str]:
    """The part of every key that is the store, its data version and the principal's scope."""
    return (str(engine.url), data_version(engine), principal.cache_key())


def _cached(engine: Engine, principal: Principal, what: tuple[Hashable, ...],
            compute: Callable[[], T]) -> T:
    return _CACHE.get_or_compute((*_prefix(engine, principal), *what), compute)


def last_billed_day(engine: Engine, principal: Principal) -> date:
    """The newest day with billed cost the principal may see: the default "as of"."""
    def compute() -> date:
        days = billed_cost(engine, principal, "day")
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


def _daily(engine: Engine, principal: Principal, scopes: Iterable[str], day: date,
           prefix: tuple[str, str, str]) -> dict[str, pd.Series]:
    """Each scope's billed spend per day up to `day`, cached: the forecast's input, and the
    chart's actual line (`cumulative_actual`) sliced from it. Project scopes not cached yet
    are read together, in one query rather than one each."""
    keys = {scope: (*prefix, "daily", scope, day) for scope in scopes}
    found = {scope: _CACHE.get(key) for scope, key in keys.items()}
    missing = [scope for scope, series in found.items() if series is None]
    projects = {scope: scope_projects(engine, principal, scope)[0]  # type: ignore[index]
                for scope in missing if scope.startswith("project:")}
    if len(projects) > 1:
        visible_projects(engine, principal, list(projects.values()))  # refuses unseen ids
        wide = daily_spend_by_project(engine, principal, end=day)
        for scope, pid in projects.items():
            found[scope] = wide[pid] if pid in wide else pd.Series(dtype="float64")
    for scope in missing:
        if found[scope] is None:
            found[scope] = daily_spend(engine, principal, scope, end=day)
        _CACHE.put(keys[scope], found[scope])
    return found


@replayed
def forecast_scopes(engine: Engine, principal: Principal, scopes: Sequence[str],
                    as_of: date | None = None, kind: PeriodKind = "month",
                    anchor_days: Mapping[str, int] | None = None, method: str = "shipped"
                    ) -> dict[str, ForecastResult | ForecastError]:
    """Period-end forecasts for many scopes ("org", "project:<id>", "env:<name>") at once.

    Each scope's period is the one of `kind` holding `as_of` in its billing calendar
    (`anchor_days[scope]`, default the org's). Only billed spend up to `as_of` is used;
    `as_of` defaults to, and is capped at, the last day with billed cost. Forecasts cached
    for this data version are reused; the others are computed in parallel. A scope that
    cannot be forecast (no billed spend) maps to its error, so one empty project does not
    hide the others; a store with no billed cost at all raises `ForecastError`.
    """
    day = _as_of(engine, principal, as_of)
    org_anchor = org_anchor_day(engine)
    anchors = {scope: (anchor_days or {}).get(scope) or org_anchor for scope in scopes}
    prefix = _prefix(engine, principal)
    keys = {scope: (*prefix, "forecast", scope, day, kind, anchor, method)
            for scope, anchor in anchors.items()}
    results = {scope: hit for scope, key in keys.items() if (hit := _CACHE.get(key)) is not None}
    todo = [scope for scope in keys if scope not in results]
    calls: dict[str, tuple[pd.Series, Period, date, str]] = {}
    for scope, daily in _daily(engine, principal, todo, day, prefix).items():
        if float(daily.sum()) == 0:
            results[scope] = ForecastError(f"There is no billed spend for {scope_label(scope)} "
                                           f"up to {day.isoformat()}.")
        else:
            calls[scope] = (daily, period_containing(day, kind, anchors[scope]), day, method)
    for scope, result in zip(calls, run_all(forecast_period_end, list(calls.values())),
                             strict=True):
        _CACHE.put(keys[scope], result)
        results[scope] = result
    return {scope: results[scope] for scope in keys}


def forecast_scope(engine: Engine, principal: Principal, scope: str = "org",
                   as_of: date | None = None, kind: PeriodKind = "month",
                   anchor_day: int | None = None, method: str = "shipped") -> ForecastResult:
    """Period-end forecast for one scope (see `forecast_scopes`); raises `ForecastError`."""
    anchors = {scope: anchor_day} if anchor_day else None
    result = forecast_scopes(engine, principal, [scope], as_of, kind, anchors, method)[scope]
    if isinstance(result, ForecastError):
        raise result
    return result


def cumulative_actual(engine: Engine, principal: Principal, scope: str,
                      forecast: ForecastResult) -> pd.Series:
    """Spend so far in the forecast's period, cumulative per day (the chart's actual line),
    from the daily series the forecast was made from (cached with it)."""
    end = min(forecast.as_of, forecast.period_end)
    if end < forecast.period_start:
        return pd.Series(dtype="float64")
    daily = _daily(engine, principal, [scope], forecast.as_of, _prefix(engine, principal))[scope]
    days = pd.date_range(forecast.period_start, end, freq="D").date
    return daily.reindex(days, fill_value=0.0).cumsum()


@replayed
def backtest_summary(engine: Engine, principal: Principal, scope: str = "org",
                     kind: PeriodKind = "month", anchor_day: int | None = None,
                     method: str = "shipped") -> BacktestResult:
    """How far to trust the forecast: the shipped method replayed mid-period on each of this
    scope's last (up to) 12 complete periods, using only data up to that day, against what
    was actually spent. ``.summary()`` is the sentence for the page."""
    day = last_billed_day(engine, principal)
    anchor = anchor_day or org_anchor_day(engine)

    def compute() -> BacktestResult:
        daily = _daily(engine, principal, [scope], day, _prefix(engine, principal))[scope]
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
