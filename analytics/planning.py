"""The allocation plan against the store: environments' spend, forecasts and last quarter's
weights joined to the pure logic of ``allocation.py``, for the Allocation page and the
``allocate`` command alike (so both show the same figures for the same day).

`outlook` gathers what a plan is judged against, once per (data version, day, viewer,
billing day, method): each environment's daily billed spend, its period-end forecast (the
forecast is seeded, so the same data and day always give the same samples) and the spend of
each environment in the previous billing quarter, the weights of Proportional shares.
`review_plan` then judges any plan against that outlook without touching the store, so an
editor can re-judge on every keystroke.

The forecasts' samples are taken index by index as joint scenarios (sample ``i`` of every
environment is one possible month), as ``allocation.py`` expects.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from analytics import exports
from analytics.access import Principal
from analytics.allocation import (
    ANALYTICS,
    DEVELOPMENT,
    PRODUCTION,
    RESERVE,
    STAGING,
    UNALLOCATED,
    EnvInput,
    EnvStatus,
    Limit,
    Plan,
    PlanError,
    ReserveOutlook,
    SimResult,
    allocate,
    guess_environment,
    plan_vs_reality,
    reserve_outlook,
    sanity_flags,
    simulate,
    suggest_split,
)
from analytics.budgets import Period, period_containing, previous_period
from analytics.forecast import ForecastResult, forecast_period_end
from analytics.memo import per_data_version, replayed
from analytics.org import anchor_day
from analytics.queries import data_range, projects, spend
from analytics.series import daily_spend
from analytics.workers import run_all

ALIASES: dict[str, str] = {
    "dev": DEVELOPMENT,
    "staging": STAGING,
    "prod": PRODUCTION,
    "analytics": ANALYTICS,
}
"""Short names the CLI accepts for the usual environments."""

# --------------------------------------------------------------------------- environments


def resolve_environment(name: str, known: Iterable[str]) -> str:
    """The environment a typed name means: a short alias (dev, staging, prod, analytics) or a
    known environment's name in any case. Anything else is refused, so a typo does not become
    a new environment with no spend.

    >>> resolve_environment("prod", []), resolve_environment("marketing", ["Marketing"])
    ('Production', 'Marketing')
    """
    typed = name.strip()
    if typed.lower() in ALIASES:
        return ALIASES[typed.lower()]
    candidates = sorted({*known, *ALIASES.values()})
    for env in candidates:
        if env.lower() == typed.lower():
            return env
    raise PlanError(f"Unknown environment '{typed}': use one of {', '.join(candidates)} "
                    f"(or {', '.join(ALIASES)})")


def suggest_environments(table: pd.DataFrame) -> pd.DataFrame:
    """The projects table with empty environments filled by a guess from the project's name
    (its id when it has none); set environments and unsure guesses are left as they are."""
    filled = table.copy()
    empty = filled["environment"].isna() | (filled["environment"].astype(str).str.strip() == "")
    names = filled["name"].where(filled["name"].notna() & (filled["name"] != ""),
                                 filled["project_id"])
    guesses = [guess_environment(str(n)) if e else None for n, e in zip(names, empty,
                                                                      strict=True)]
    filled["environment"] = [g if g is not None else v for g, v in zip(
        guesses, filled["environment"], strict=True)]
    return filled


# --------------------------------------------------------------------------- the outlook


@dataclass(frozen=True)
class ProjectOutlook:
    """One project's spend this period and its own period-end forecast."""

    project_id: str
    name: str
    environment: str | None
    actual: float
    forecast: float
    low: float
    high: float


@dataclass(frozen=True, eq=False)
class Outlook:
    """What a plan for the period holding ``as_of`` is judged against."""

    period: Period
    as_of: date
    env_inputs: dict[str, EnvInput]  # environments with visible projects
    projects: tuple[ProjectOutlook, ...]  # every visible project, unassigned ones included
    weights: dict[str, Decimal]  # billed spend per environment in ``weights_period``
    weights_period: Period
    rough: tuple[str, ...]  # environments forecast from under two weeks of history
    scoped: bool  # the viewer sees only some projects

    @property
    def fraction_elapsed(self) -> float:
        """The part of the period up to and including ``as_of``."""
        elapsed = (min(self.as_of, self.period.end) - self.period.start).days + 1
        return min(max(elapsed / self.period.days, 0.0), 1.0)

    @property
    def environments(self) -> list[str]:
        return list(self.env_inputs)

    def samples(self, envs: Sequence[str]) -> dict[str, np.ndarray]:
        """Simulated period-end totals per environment; $0 for one with no spend."""
        return {env: self.env_inputs[env].samples if env in self.env_inputs else np.zeros(1)
                for env in envs}


def known_environments(engine: Engine, principal: Principal) -> list[str]:
    """The environments the principal's projects are labelled with."""
    table = projects(engine, principal)
    return sorted({env.strip() for env in table["environment"].dropna() if env.strip()})


def default_as_of(engine: Engine, principal: Principal) -> date:
    """The newest day with data: exports arrive late, and judging a period as of today would
    read the days not yet exported as days without spend."""
    return data_range(engine, principal)[1] or datetime.now(UTC).date()


@replayed
def outlook(engine: Engine, principal: Principal, as_of: date | None = None,
            method: str = "shipped") -> Outlook:
    """The outlook for the budget month holding ``as_of`` (default: the newest data, so a
    refresh after an import prepares the newest month), kept per store, data version (which
    relabelling a project changes too), day, viewer scope, billing day and forecast method."""
    return _outlook(engine, principal, as_of, anchor_day(engine), method)


@per_data_version
def _outlook(engine: Engine, principal: Principal, as_of: date | None, anchor: int,
             method: str) -> Outlook:
    return _build_outlook(engine, principal, projects(engine, principal),
                          as_of or default_as_of(engine, principal), anchor, method)


def _build_outlook(engine: Engine, principal: Principal, table: pd.DataFrame, as_of: date,
                   anchor: int, method: str) -> Outlook:
    period = period_containing(as_of, "month", anchor)
    env_of = {pid: (env.strip() if isinstance(env, str) and env.strip() else None)
              for pid, env in zip(table["project_id"], table["environment"], strict=True)}
    members: dict[str, list[str]] = {}
    for pid, env in env_of.items():
        if env is not None:
            members.setdefault(env, []).append(pid)
    forecasts = _forecasts(engine, principal, members, list(env_of), period, as_of, method)

    env_inputs: dict[str, EnvInput] = {}
    rough = []
    for env in sorted(members):
        series, result = forecasts[tuple(sorted(members[env]))]
        env_inputs[env] = _env_input(series, result, period, as_of, sorted(members[env]))
        if result is not None and result.rough:
            rough.append(env)
    names = dict(zip(table["project_id"], table["name"], strict=True))
    project_rows = []
    for pid in sorted(env_of, key=lambda p: (env_of[p] or "~", str(names.get(p) or p))):
        _, result = forecasts[(pid,)]
        figures = (0.0, 0.0, 0.0, 0.0) if result is None else (
            result.actual_to_date, result.forecast, result.low, result.high)
        project_rows.append(ProjectOutlook(pid, str(names.get(pid) or pid), env_of[pid],
                                           *figures))
    weights_period = previous_period(period_containing(as_of, "quarter", anchor), "quarter",
                                     anchor)
    return Outlook(period, as_of, env_inputs, tuple(project_rows),
                   _spend_by_environment(engine, principal, env_of, weights_period),
                   weights_period, tuple(rough), principal.projects is not None)


def _forecasts(engine: Engine, principal: Principal, members: Mapping[str, list[str]],
               projects: list[str], period: Period, as_of: date, method: str
               ) -> dict[tuple[str, ...], tuple[pd.Series, ForecastResult | None]]:
    """Each environment's and each project's daily spend and period-end forecast (None for a
    series that never had spend), keyed by its sorted project ids (an environment of one
    project is that project). The forecasts run in parallel worker processes."""
    scopes = {tuple(sorted(ids)): f"env:{env}" for env, ids in sorted(members.items())}
    for pid in projects:
        scopes.setdefault((pid,), f"project:{pid}")
    series = {key: daily_spend(engine, principal, scope, end=as_of)
              for key, scope in scopes.items()}
    spent = [key for key, daily in series.items() if not daily.empty and (daily != 0).any()]
    made = run_all(forecast_period_end, [(series[key], period, as_of, method) for key in spent])
    results = dict(zip(spent, made, strict=True))
    return {key: (series[key], results.get(key)) for key in scopes}


def _env_input(series: pd.Series, result: ForecastResult | None, period: Period, as_of: date,
               ids: list[str]) -> EnvInput:
    if result is None:
        return EnvInput(0.0, 0.0, 0.0, 0.0, np.zeros(1), projects=ids)
    in_period = [(day, value) for day, value in series.items()
                 if period.start <= day <= min(as_of, period.end)]
    spent = np.cumsum([value for _, value in in_period])
    path = [(day, float(total)) for (day, _), total in zip(in_period, spent, strict=True)]
    path += [(ts.date(), float(total)) for ts, total in zip(
        result.daily_path["ds"], result.daily_path["expected_cumulative"], strict=True)]
    return EnvInput(result.actual_to_date, result.forecast, result.low, result.high,
                    result.samples, path, ids)


def _spend_by_environment(engine: Engine, principal: Principal,
                          env_of: Mapping[str, str | None], period: Period) -> dict[str, Decimal]:
    """Billed dollars per environment in ``period`` (exact; summed from per-project SQL sums)."""
    frame = spend(engine, principal, "project", period.start, period.end)
    totals: dict[str, Decimal] = {env: Decimal(0) for env in env_of.values() if env}
    for pid, cost in zip(frame["project"], frame["cost_usd"], strict=True):
        env = env_of.get(pid)
        if env is not None and cost is not None:
            totals[env] += cost
    return totals


def starting_total(view: Outlook) -> Decimal:
    """A first budget to edit: the forecast for every environment, up to the next $100."""
    forecast = sum(inp.forecast for inp in view.env_inputs.values())
    return Decimal(max(100, math.ceil(forecast / 100) * 100))


# --------------------------------------------------------------------------- judging a plan


@dataclass(frozen=True, eq=False)
class Review:
    """A plan judged against an outlook: the figures the page shows and the CLI prints."""

    plan: Plan
    outlook: Outlook
    allocations: dict[str, Decimal]
    statuses: list[EnvStatus]
    reserve: ReserveOutlook
    flags: list[str]

    def table(self) -> pd.DataFrame:
        """One row per environment with its projects beneath (level 'environment' or
        'project'); projects have no allocation of their own."""
        rows: list[dict[str, Any]] = []
        by_env: dict[str | None, list[ProjectOutlook]] = {}
        for p in self.outlook.projects:
            by_env.setdefault(p.environment, []).append(p)
        for s in self.statuses:
            rows.append({
                "level": "environment", "environment": s.environment, "project": None,
                "limit": s.limit, "allocation": s.allocation, "actual_to_date": s.actual,
                "forecast": s.forecast, "low": s.low, "high": s.high,
                "p_overrun": s.p_overrun, "hits_allocation_on": s.hits_allocation_on})
            rows += [_project_row(p) for p in by_env.get(s.environment, [])]
        rows += [_project_row(p) for p in by_env.get(None, [])]
        return pd.DataFrame(rows, columns=TABLE_COLUMNS)

    def to_dict(self) -> dict[str, Any]:
        """Everything the review shows, JSON-ready (money as numbers, dates as ISO text)."""
        view = self.outlook
        return {
            "plan": self.plan.to_dict(),
            "period": {"start": view.period.start.isoformat(),
                       "end": view.period.end.isoformat()},
            "as_of": view.as_of.isoformat(),
            "fraction_elapsed": round(view.fraction_elapsed, 4),
            "environments": exports.records(self.table()),
            "reserve": {
                "allocation": float(self.allocations[RESERVE]),
                "unallocated": float(self.allocations.get(UNALLOCATED, Decimal(0))),
                "expected_use": round(self.reserve.expected_use, 2),
                "p_exhausted": self.reserve.p_exhausted,
            },
            "proportional_weights": {
                "period": {"start": view.weights_period.start.isoformat(),
                           "end": view.weights_period.end.isoformat()},
                "spend": {env: float(w) for env, w in view.weights.items()},
            },
            "flags": self.flags,
        }


TABLE_COLUMNS = ("level", "environment", "project", "limit", "allocation", "actual_to_date",
                 "forecast", "low", "high", "p_overrun", "hits_allocation_on")


def _project_row(p: ProjectOutlook) -> dict[str, Any]:
    return {"level": "project", "environment": p.environment, "project": p.name, "limit": None,
            "allocation": None, "actual_to_date": p.actual, "forecast": p.forecast,
            "low": p.low, "high": p.high, "p_overrun": None, "hits_allocation_on": None}


def review_plan(plan: Plan, view: Outlook) -> Review:
    """Judge ``plan`` against ``view``: allocations, each environment's status, the reserve's
    expected use and the warnings in words. A plan that cannot be allocated raises
    `PlanError` saying what is off."""
    allocations = allocate(plan, view.weights)
    planned = {s.environment for s in plan.shares}
    # An environment with no spend at all cannot change the outcome; one with spend must be
    # in the plan (allocation.py refuses to drop it from the comparison unseen).
    inputs = {env: given for env, given in view.env_inputs.items()
              if env in planned or given.forecast > 0 or given.actual_to_date > 0}
    statuses = plan_vs_reality(plan, allocations, inputs)
    flags = sanity_flags(statuses, plan, view.fraction_elapsed) + _data_flags(view)
    return Review(plan, view, allocations, statuses, reserve_outlook(plan, allocations, inputs),
                  flags)


def review(engine: Engine, principal: Principal, plan: Plan,
           as_of: date | None = None) -> Review:
    """`review_plan` against the store's outlook for ``as_of`` (default: the newest data)."""
    return review_plan(plan, outlook(engine, principal, as_of))


def _data_flags(view: Outlook) -> list[str]:
    flags = []
    loose = [p for p in view.projects if p.environment is None and p.forecast > 0]
    if loose:
        spent = sum(p.actual for p in loose)
        flags.append(f"{len(loose)} project{'s' if len(loose) > 1 else ''} without an "
                     f"environment ({', '.join(p.name for p in loose)}) spent ${spent:,.2f} "
                     "this period outside the plan: assign them in Settings")
    flags += [f"{env}'s forecast rests on under two weeks of history: its range is wide"
              for env in view.rough]
    if view.scoped:
        flags.append("You see only some projects: actuals and forecasts cover those alone")
    return flags


# --------------------------------------------------------------------------- simulation


def plan_percents(plan: Plan, allocations: Mapping[str, Decimal]) -> dict[str, float]:
    """Each environment's allocation as a percent of the allocatable part (what the
    simulation's shares are), whatever method set it."""
    allocatable = float(plan.total) * float(100 - plan.reserve_pct) / 100
    return {s.environment: float(allocations[s.environment]) / allocatable * 100
            for s in plan.shares}


def simulate_split(view: Outlook, shares_pct: Mapping[str, float], total: float | Decimal,
                   reserve_pct: float | Decimal, limits: Mapping[str, Limit]) -> SimResult:
    """`allocation.simulate` over the outlook's forecast samples."""
    return simulate(shares_pct, total, reserve_pct, view.samples(list(shares_pct)), limits)


def suggest(view: Outlook, envs: Sequence[str], total: float | Decimal,
            reserve_pct: float | Decimal, limits: Mapping[str, Limit],
            step: float = 1.0) -> dict[str, float]:
    """`allocation.suggest_split` over the outlook's forecast samples for ``envs``."""
    return suggest_split(total, reserve_pct, view.samples(envs), limits, step)
