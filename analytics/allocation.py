"""Split one budget across environments, and check the split against spend and forecasts.

A common plan gives Development 20%, Staging 10%, Production 60% and Analytics 10%, after 10% of
the total is kept back as an emergency reserve. Development and Staging get *hard* limits (the
provider refuses requests past them); Production gets a *soft* limit (an alert), because a hard
limit there would take the product down, and its overruns are paid from the reserve.

How a plan turns into dollars (chosen so the common plan reads the way teams say it):

- The reserve is ``reserve_pct`` of the *total* and comes off first.
- A ``percent`` share is a percent of what is left after the reserve (the allocatable part):
  20/10/60/10 with a 10% reserve on $1,000 gives $180/$90/$540/$90 and a $100 reserve.
- A ``fixed`` share is an exact dollar amount taken from the allocatable part.
- The rest (what percent and fixed shares leave) goes to the ``even`` and ``proportional``
  shares: each of them gets one equal slot of the rest, and the slots of the proportional
  shares are pooled and re-split in proportion to a weight per environment (for example last
  quarter's spend), as in the FinOps Fixed / Proportional / Even splits.
- With no even or proportional share, the rest is returned under ``"Unallocated"``.

Allocations are rounded to the cent with the largest-remainder method, so the shares, the
reserve and any unallocated money add up to the total exactly.

Forecasts are compared jointly: sample ``i`` of every environment's simulated period-end total
is taken as one scenario. A hard-limited environment that would overrun is cut off (it spends
its allocation and no more), so only soft-limited environments draw on the reserve.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any, Literal, NamedTuple, get_args

import numpy as np

from analytics.exports import dollars

Method = Literal["percent", "fixed", "proportional", "even"]
Limit = Literal["hard", "soft"]
METHODS: tuple[str, ...] = get_args(Method)
LIMITS: tuple[str, ...] = get_args(Limit)

DEVELOPMENT = "Development"
STAGING = "Staging"
PRODUCTION = "Production"
ANALYTICS = "Analytics"
RESERVE = "Reserve"
UNALLOCATED = "Unallocated"

PRESET_PERCENTS: dict[str, Decimal] = {
    DEVELOPMENT: Decimal(20),
    STAGING: Decimal(10),
    PRODUCTION: Decimal(60),
    ANALYTICS: Decimal(10),
}
PRESET_RESERVE_PCT = Decimal(10)
PRESET_LIMITS: dict[str, Limit] = {
    DEVELOPMENT: "hard",
    STAGING: "hard",
    PRODUCTION: "soft",
    ANALYTICS: "soft",
}

# Whole words only: "prod-api" is Production, "product-search" is not.
_ALIASES: dict[str, frozenset[str]] = {
    DEVELOPMENT: frozenset({"dev", "devel", "development", "sandbox"}),
    STAGING: frozenset({"stg", "stage", "staging", "qa", "uat", "preprod", "preproduction"}),
    PRODUCTION: frozenset({"prod", "prd", "production", "live"}),
    ANALYTICS: frozenset({"analytics", "data", "bi", "etl", "batch"}),
}


class PlanError(ValueError):
    """A plan, or the figures given with it, that cannot be used as it stands."""


# --------------------------------------------------------------------------- environments


def guess_environment(project_name: str) -> str | None:
    """Guess a project's environment from the words in its name, or None if unsure.

    Names are split into words at separators, digits and camelCase humps, and only whole
    words count, so a product called "product-search" is not taken for production. A name
    whose words point at two environments ("prod-etl") is ambiguous and gives None: a wrong
    guess would silently move spend between budgets, so the user decides.

    >>> guess_environment("prod-api"), guess_environment("myETLJob"), guess_environment("pre-prod")
    ('Production', 'Analytics', 'Staging')
    """
    humps = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", project_name)
    words: list[str] = []
    for word in re.findall(r"[a-z]+", humps.lower()):
        if words and words[-1] == "pre":  # "pre-prod" is staging, not production
            words[-1] += word
        else:
            words.append(word)
    found = {env for env, aliases in _ALIASES.items() if aliases.intersection(words)}
    return found.pop() if len(found) == 1 else None


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Share:
    """One environment's part of a plan.

    ``value`` is a percent of the allocatable part for ``percent``, dollars for ``fixed``, and
    None for ``even`` and ``proportional`` (their weights are passed to `allocate`).
    """

    environment: str
    method: Method
    value: Decimal | None
    limit: Limit


@dataclass(frozen=True)
class Plan:
    """A named split of ``total`` dollars; see the module docstring for the semantics."""

    name: str
    total: Decimal
    reserve_pct: Decimal
    shares: list[Share]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form; decimals become strings so no cent is lost on the way."""
        return {
            "name": self.name,
            "total": str(self.total),
            "reserve_pct": str(self.reserve_pct),
            "shares": [
                {
                    "environment": s.environment,
                    "method": s.method,
                    "value": None if s.value is None else str(s.value),
                    "limit": s.limit,
                }
                for s in self.shares
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        """Read a plan saved by `to_dict`; a damaged one raises `PlanError` saying what is wrong."""
        try:
            name = str(data["name"])
            shares = []
            for raw in data["shares"]:
                method, limit = raw["method"], raw["limit"]
                if method not in METHODS:
                    raise PlanError(f"Unknown split method {method!r}: use one of {METHODS}")
                if limit not in LIMITS:
                    raise PlanError(f"Unknown limit {limit!r}: use 'hard' or 'soft'")
                value = raw.get("value")
                shares.append(
                    Share(
                        environment=str(raw["environment"]),
                        method=method,
                        value=None if value is None else _decimal(value, "A share's value"),
                        limit=limit,
                    )
                )
            return cls(
                name=name,
                total=_decimal(data["total"], "The total"),
                reserve_pct=_decimal(data["reserve_pct"], "The reserve"),
                shares=shares,
            )
        except KeyError as missing:
            raise PlanError(f"The saved plan is missing {missing}") from None
        except TypeError:
            raise PlanError("The saved plan is not laid out as a plan") from None


def preset_plan(total: Decimal, name: str = "Standard split") -> Plan:
    """The common plan: 20/10/60/10 after a 10% reserve, hard limits on dev and staging."""
    shares = [
        Share(env, "percent", pct, PRESET_LIMITS[env]) for env, pct in PRESET_PERCENTS.items()
    ]
    return Plan(name=name, total=total, reserve_pct=PRESET_RESERVE_PCT, shares=shares)


def _decimal(raw: Any, what: str) -> Decimal:
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        raise PlanError(f"{what} is not a number: {raw!r}") from None
    if not value.is_finite():
        raise PlanError(f"{what} is not a number: {raw!r}")
    return value


# --------------------------------------------------------------------------- validation


class _Problem(NamedTuple):
    message: str
    blocking: bool  # False: the plan can still be allocated (e.g. money left unallocated)


def validate(plan: Plan, weights: Mapping[str, Decimal] | None = None) -> list[str]:
    """Everything wrong with a plan, in plain words; an empty list means it is sound.

    Pass the proportional weights you will allocate with, so missing ones are caught too.
    Some problems (money left unallocated, a share left with nothing) are warnings:
    `allocate` still works; the others make it raise.
    """
    return [problem.message for problem in _problems(plan, weights)]


def _problems(plan: Plan, weights: Mapping[str, Decimal] | None) -> list[_Problem]:
    problems = _part_problems(plan)
    if problems:  # sums over broken parts would only add confusing messages
        return problems
    return _sum_problems(plan) + _weight_problems(plan, weights)


def _part_problems(plan: Plan) -> list[_Problem]:
    found: list[str] = []
    if not plan.shares:
        found.append("The plan has no shares: add at least one environment")
    if plan.total <= 0:
        found.append(f"The budget total must be more than $0 (it is {dollars(plan.total)})")
    elif not _whole_cents(plan.total):
        found.append(f"The budget total must be in whole cents (it is ${plan.total})")
    if not 0 <= plan.reserve_pct < 100:
        found.append(
            f"The reserve must be at least 0% and under 100% (it is {_pct(plan.reserve_pct)}%)"
        )
    seen: set[str] = set()
    for share in plan.shares:
        env = share.environment
        if not env.strip():
            found.append("Every share needs an environment name")
        elif env in (RESERVE, UNALLOCATED):
            found.append(f"'{env}' names a line of the budget itself: call the environment else")
        elif env in seen:
            found.append(f"{env} appears more than once: merge its shares into one")
        seen.add(env)
        if share.method not in METHODS:
            found.append(f"{env} has an unknown split method {share.method!r}")
        if share.limit not in LIMITS:
            found.append(f"{env} has an unknown limit {share.limit!r}: use 'hard' or 'soft'")
        if share.method in ("percent", "fixed"):
            unit = "percent" if share.method == "percent" else "dollar amount"
            if share.value is None:
                found.append(f"{env} needs a {unit}")
            elif share.value < 0:
                found.append(f"{env} has a negative {unit} ({share.value}): use 0 or more")
            elif share.method == "fixed" and not _whole_cents(share.value):
                found.append(f"{env}'s fixed amount must be in whole cents (it is ${share.value})")
        elif share.value is not None and share.method in METHODS:
            how = "evenly" if share.method == "even" else "in proportion to spend"
            found.append(f"{env} is split {how}, so it takes no value (it has {share.value})")
    return [_Problem(message, blocking=True) for message in found]


def _sum_problems(plan: Plan) -> list[_Problem]:
    allocatable = plan.total * (100 - plan.reserve_pct) / 100
    percent = sum((s.value for s in plan.shares if s.method == "percent" and s.value), Decimal(0))
    fixed = sum((s.value for s in plan.shares if s.method == "fixed" and s.value), Decimal(0))
    percent_dollars = allocatable * percent / 100
    if percent > 100:
        return [
            _Problem(
                f"Percent shares add up to {_pct(percent)}%: reduce them by "
                f"{_pct(percent - 100)} points",
                blocking=True,
            )
        ]
    if fixed > allocatable:
        return [
            _Problem(
                f"Fixed amounts add up to {dollars(fixed)}, more than the {dollars(allocatable)} "
                f"left after the reserve: reduce them by {dollars(fixed - allocatable)}",
                blocking=True,
            )
        ]
    rest = allocatable - percent_dollars - fixed
    if rest < 0:
        return [
            _Problem(
                f"Percent shares ({_pct(percent)}%, {dollars(percent_dollars)}) and fixed amounts "
                f"({dollars(fixed)}) need more than the {dollars(allocatable)} left after the "
                f"reserve: reduce them by {dollars(-rest)}",
                blocking=True,
            )
        ]
    takers = [s.environment for s in plan.shares if s.method in ("even", "proportional")]
    if not takers and rest > 0:
        covered = (allocatable - rest) / allocatable * 100
        return [
            _Problem(
                f"Shares add up to {_pct(covered)}%: {_pct(100 - covered)}% of the budget after "
                f"the reserve ({dollars(rest)}) is unallocated",
                blocking=False,
            )
        ]
    if takers and rest == 0:
        return [
            _Problem(
                f"Percent and fixed shares use the whole budget, so {_names(takers)} "
                f"{'gets' if len(takers) == 1 else 'get'} nothing",
                blocking=False,
            )
        ]
    return []


def _weight_problems(plan: Plan, weights: Mapping[str, Decimal] | None) -> list[_Problem]:
    proportional = [s.environment for s in plan.shares if s.method == "proportional"]
    if not proportional:
        return []
    given = weights or {}
    missing = [env for env in proportional if env not in given]
    if missing:
        message = (
            f"{_names(missing)} {'is' if len(missing) == 1 else 'are'} split in proportion "
            "to spend, but no spend figure was given for "
            f"{'it' if len(missing) == 1 else 'them'}"
        )
        return [_Problem(message, blocking=True)]
    negative = [env for env in proportional if given[env] < 0]
    if negative:
        return [_Problem(f"The spend figure for {_names(negative)} is negative", blocking=True)]
    if sum(Fraction(given[env]) for env in proportional) == 0:
        return [
            _Problem(
                f"{_names(proportional)} have no past spend to split by: use an even split",
                blocking=True,
            )
        ]
    return []


# --------------------------------------------------------------------------- allocation


def allocate(plan: Plan, weights: Mapping[str, Decimal] | None = None) -> dict[str, Decimal]:
    """Dollars per environment, plus ``"Reserve"`` (and ``"Unallocated"`` when money is left).

    The values add up to ``plan.total`` exactly: amounts are computed as exact fractions and
    rounded to the cent by the largest-remainder method (ties go to the earlier share).
    Raises `PlanError` with the plan's blocking problems.

    >>> allocate(preset_plan(Decimal("1000")))["Production"]
    Decimal('540.00')
    """
    blocking = [p.message for p in _problems(plan, weights) if p.blocking]
    if blocking:
        raise PlanError("; ".join(blocking))
    total = Fraction(plan.total) * 100  # cents, whole by validation
    reserve = total * Fraction(plan.reserve_pct) / 100
    allocatable = total - reserve
    taken = {
        s.environment: allocatable * Fraction(s.value) / 100
        if s.method == "percent"
        else Fraction(s.value) * 100
        for s in plan.shares
        if s.method in ("percent", "fixed") and s.value is not None
    }
    rest = allocatable - sum(taken.values(), Fraction(0))
    takers = [s.environment for s in plan.shares if s.environment not in taken]
    exact = taken | _split_rest(plan, rest, takers, weights or {})
    exact = {s.environment: exact[s.environment] for s in plan.shares}  # plan order
    exact[RESERVE] = reserve
    if not takers and rest > 0:
        exact[UNALLOCATED] = rest
    cents = _largest_remainder(exact, int(total))
    return {key: Decimal(value).scaleb(-2) for key, value in cents.items()}


def _split_rest(
    plan: Plan, rest: Fraction, takers: Sequence[str], weights: Mapping[str, Decimal]
) -> dict[str, Fraction]:
    """One equal slot of the rest per taker; proportional slots pooled and split by weight."""
    if not takers:
        return {}
    slot = rest / len(takers)
    proportional = [s.environment for s in plan.shares if s.method == "proportional"]
    weight = {env: Fraction(weights[env]) for env in proportional}
    pool, weight_sum = slot * len(proportional), sum(weight.values(), Fraction(0))
    return {env: pool * weight[env] / weight_sum if env in weight else slot for env in takers}


def _largest_remainder(exact: Mapping[str, Fraction], total: int) -> dict[str, int]:
    """Round each amount down, then give the missing units to the largest fractional parts."""
    rounded = {key: math.floor(value) for key, value in exact.items()}
    short = total - sum(rounded.values())
    by_remainder = sorted(exact, key=lambda key: exact[key] - rounded[key], reverse=True)
    for key in by_remainder[:short]:  # sorted() is stable, so ties keep the plan's order
        rounded[key] += 1
    return rounded


# --------------------------------------------------------------------------- plan vs reality


@dataclass(frozen=True, eq=False)
class EnvInput:
    """What is known about one environment's spend this period (float dollars).

    ``samples`` are simulated period-end totals (a forecast's samples, or a single value to use
    in every scenario). ``daily_expected_path`` is the expected cumulative spend since the
    period began, by day, actuals included.
    """

    actual_to_date: float
    forecast: float
    low: float
    high: float
    samples: np.ndarray
    daily_expected_path: list[tuple[date, float]] = field(default_factory=list)
    projects: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class EnvStatus:
    """One environment's allocation beside its actuals and forecast."""

    environment: str
    limit: Limit
    allocation: Decimal
    actual: float
    forecast: float
    low: float
    high: float
    p_overrun: float  # share of scenarios whose period-end total exceeds the allocation
    hits_allocation_on: date | None  # first day the expected path reaches the allocation
    spent_share: float | None  # actual / allocation; None when the allocation is $0
    projects: list[str]


@dataclass(frozen=True)
class ReserveOutlook:
    """How much of the reserve soft-limited overruns are expected to use."""

    buffer: float  # the reserve plus any unallocated money
    expected_use: float  # mean over scenarios of the soft-limited overruns
    p_exhausted: float  # share of scenarios whose overruns exceed the buffer


@dataclass(frozen=True)
class SimResult:
    """The outcome of a split over all scenarios."""

    allocations: dict[str, float]
    p_overrun: dict[str, float]
    p_any_hard_cutoff: float  # share of scenarios in which some hard-limited env is cut off
    reserve: ReserveOutlook


_AHEAD_OF_THE_PERIOD = 0.30 - 1e-9  # 30 points, with room for float error at exactly 30
_NO_SPEND = EnvInput(0.0, 0.0, 0.0, 0.0, np.zeros(1))


def plan_vs_reality(
    plan: Plan, allocations: Mapping[str, Decimal], env_inputs: Mapping[str, EnvInput]
) -> list[EnvStatus]:
    """Each of the plan's environments, in plan order, against its allocation.

    ``allocations`` is what `allocate` returned for ``plan``. An environment with no input
    has spent nothing; spend given for an environment the plan does not have raises
    `PlanError`, since it would otherwise drop out of the comparison unseen.
    """
    inputs = _inputs_for(plan, env_inputs)
    outcome = _plan_outcome(plan, allocations, inputs)
    statuses = []
    for share, given in zip(plan.shares, inputs, strict=True):
        env = share.environment
        allocation = allocations[env]
        statuses.append(
            EnvStatus(
                environment=env,
                limit=share.limit,
                allocation=allocation,
                actual=given.actual_to_date,
                forecast=given.forecast,
                low=given.low,
                high=given.high,
                p_overrun=outcome.p_overrun[env],
                hits_allocation_on=_first_day_reaching(given.daily_expected_path, allocation),
                spent_share=given.actual_to_date / float(allocation) if allocation else None,
                projects=list(given.projects),
            )
        )
    return statuses


def reserve_outlook(
    plan: Plan, allocations: Mapping[str, Decimal], env_inputs: Mapping[str, EnvInput]
) -> ReserveOutlook:
    """Expected use of the reserve and the chance it runs out, over the forecast scenarios.

    In each scenario the reserve pays max(0, outcome - allocation) for every soft-limited
    environment; hard-limited ones are cut off at their allocation instead. Unallocated money
    counts as part of the reserve.
    """
    return _plan_outcome(plan, allocations, _inputs_for(plan, env_inputs)).reserve


def _inputs_for(plan: Plan, env_inputs: Mapping[str, EnvInput]) -> list[EnvInput]:
    planned = {s.environment for s in plan.shares}
    unplanned = [env for env in env_inputs if env not in planned]
    if unplanned:
        raise PlanError(
            f"Spend was given for {_names(unplanned)}, which the plan '{plan.name}' has no "
            "share for: add a share or move the projects to a planned environment"
        )
    return [env_inputs.get(s.environment, _NO_SPEND) for s in plan.shares]


def _plan_outcome(
    plan: Plan, allocations: Mapping[str, Decimal], inputs: Sequence[EnvInput]
) -> SimResult:
    envs = [s.environment for s in plan.shares]
    missing = [env for env in [*envs, RESERVE] if env not in allocations]
    if missing:
        raise PlanError(f"The allocations have no figure for {_names(missing)}: re-allocate")
    outcomes = _scenarios({env: given.samples for env, given in zip(envs, inputs, strict=True)})
    buffer = float(allocations[RESERVE] + allocations.get(UNALLOCATED, Decimal(0)))
    return _outcome(
        envs,
        np.array([float(allocations[env]) for env in envs]),
        outcomes,
        np.array([s.limit == "hard" for s in plan.shares]),
        buffer,
    )


def _first_day_reaching(path: Sequence[tuple[date, float]], allocation: Decimal) -> date | None:
    limit = float(allocation)
    return next((day for day, spent in path if spent > 0 and spent >= limit), None)


# --------------------------------------------------------------------------- sanity rules


def sanity_flags(
    statuses: Sequence[EnvStatus], plan: Plan, period_fraction_elapsed: float
) -> list[str]:
    """Plain-language warnings about a plan and how it is going.

    The rules: Staging forecast above Development (usually a load test or copied traffic);
    a hard limit on Production; an environment whose spent share is 30 points or more ahead
    of the elapsed part of the period (80% spent at mid-period); a hard-limited environment
    forecast to reach its limit (requests refused after); a soft-limited one forecast to
    overrun (the reserve pays).
    """
    if not 0 <= period_fraction_elapsed <= 1:
        raise PlanError(
            f"The elapsed part of the period must be 0 to 1, not {period_fraction_elapsed}"
        )
    flags: list[str] = []
    by_env = {s.environment: s for s in statuses}
    dev, staging = by_env.get(DEVELOPMENT), by_env.get(STAGING)
    if dev and staging and staging.forecast > dev.forecast:
        flags.append(
            f"Staging is forecast to cost more than Development ({dollars(staging.forecast)} "
            f"against {dollars(dev.forecast)})"
        )
    if any(s.environment == PRODUCTION and s.limit == "hard" for s in plan.shares):
        flags.append("Production has a hard limit: an overrun would take the product down")
    for s in statuses:
        spent = s.spent_share
        if spent is not None and spent - period_fraction_elapsed >= _AHEAD_OF_THE_PERIOD:
            flags.append(
                f"{s.environment} has spent {spent:.0%} of its share with "
                f"{period_fraction_elapsed:.0%} of the period gone"
            )
        allocation = float(s.allocation)
        if s.limit == "hard" and s.actual > 0 and s.actual >= allocation:
            flags.append(f"{s.environment} has reached its hard limit: requests are being refused")
        elif s.limit == "hard" and s.hits_allocation_on is not None:
            flags.append(
                f"{s.environment} is forecast to hit its hard limit on "
                f"{s.hits_allocation_on.isoformat()}; requests will be refused after that"
            )
        elif s.limit == "hard" and s.forecast > allocation:
            flags.append(
                f"{s.environment} is forecast to reach its hard limit ({dollars(s.forecast)} "
                f"against {dollars(allocation)}); requests will be refused once it does"
            )
        elif s.limit == "soft" and s.forecast > allocation:
            flags.append(
                f"{s.environment} is forecast to go over its share by "
                f"{dollars(s.forecast - allocation)}; the reserve would pay for it"
            )
    return flags


# --------------------------------------------------------------------------- simulation


def simulate(
    shares_pct: Mapping[str, float],
    total: float | Decimal,
    reserve_pct: float | Decimal,
    samples: Mapping[str, np.ndarray],
    limits: Mapping[str, Limit],
) -> SimResult:
    """Chances of overrun per environment, of any hard cut-off and of running out of reserve.

    ``shares_pct`` are percents of the allocatable part (total minus reserve), as in a plan;
    anything they leave unallocated counts as reserve. Sample ``i`` of each environment is
    one scenario, so the chances are joint (see the module docstring).
    """
    envs = list(shares_pct)
    _require(envs, samples, limits)
    pct = np.array([float(shares_pct[env]) for env in envs])
    if (pct < 0).any():
        raise PlanError("Shares cannot be below 0%")
    if pct.sum() > 100 + 1e-9:
        raise PlanError(
            f"Shares add up to {pct.sum():g}%: reduce them by {pct.sum() - 100:g} points"
        )
    total_f, allocatable = _allocatable(total, reserve_pct)
    allocation = allocatable * pct / 100
    hard = np.array([limits[env] == "hard" for env in envs])
    outcomes = _scenarios({env: samples[env] for env in envs})
    return _outcome(envs, allocation, outcomes, hard, total_f - float(allocation.sum()))


def suggest_split(
    total: float | Decimal,
    reserve_pct: float | Decimal,
    samples: Mapping[str, np.ndarray],
    limits: Mapping[str, Limit],
    step: float = 1.0,
) -> dict[str, float]:
    """The split (percents of the allocatable part, multiples of ``step``, adding to 100)
    with the least chance that any hard-limited environment is cut off.

    Ties go to the smallest chance of running out of reserve, then to the split closest to the
    preset (squared distance; environments outside the preset make the reference an even
    split). A hard-limited environment is therefore funded up to the worst simulated outcome
    the budget can cover, and soft-limited ones share what is left.

    It is a heuristic, fast enough for a slider: hard-limited environments get the cheapest
    allocation that covers the most scenarios (exact for one or two of them), soft ones get
    units one at a time where an overrun is likeliest, leftovers go toward the preset, and a
    pattern search of moves between environments then polishes the exact objective. The preset
    split is scored too and the better of the two returned, so the answer is never worse.
    """
    envs = list(samples)
    _require(envs, samples, limits)
    units = round(100 / step)
    if step <= 0 or not math.isclose(units * step, 100, abs_tol=1e-9):
        raise PlanError(f"The step must divide 100% evenly (got {step}%)")
    total_f, allocatable = _allocatable(total, reserve_pct)
    unit_dollars = allocatable * step / 100
    outcomes = _scenarios(samples) / unit_dollars  # work in units so "covered" is exact
    hard = np.array([limits[env] == "hard" for env in envs])
    buffer = (total_f - allocatable) / unit_dollars
    reference = _largest_remainder(
        {env: Fraction(pct) * units / 100 for env, pct in _reference_percents(envs).items()},
        units,
    )
    reference_units = np.array([reference[env] for env in envs])
    greedy = _greedy_split(outcomes, hard, units, reference_units)
    candidates = [_polish(greedy, outcomes, hard, buffer, reference_units), reference_units]
    keys = [_split_key(c[None, :], outcomes, hard, buffer, reference_units)[0] for c in candidates]
    best = candidates[min(range(len(candidates)), key=keys.__getitem__)]
    return {env: round(float(u) * step, 10) for env, u in zip(envs, best, strict=True)}


def _require(
    envs: Sequence[str], samples: Mapping[str, np.ndarray], limits: Mapping[str, Limit]
) -> None:
    if not envs:
        raise PlanError("There are no environments to split between")
    no_samples = [env for env in envs if env not in samples]
    if no_samples:
        raise PlanError(f"No simulated outcomes were given for {_names(no_samples)}")
    no_limit = [env for env in envs if limits.get(env) not in LIMITS]
    if no_limit:
        raise PlanError(f"Say whether {_names(no_limit)} has a hard or a soft limit")


def _allocatable(total: float | Decimal, reserve_pct: float | Decimal) -> tuple[float, float]:
    total_f, reserve = float(total), float(reserve_pct)
    if total_f <= 0:
        raise PlanError(f"The budget total must be more than $0 (it is {dollars(total_f)})")
    if not 0 <= reserve < 100:
        raise PlanError(f"The reserve must be at least 0% and under 100% (it is {reserve:g}%)")
    return total_f, total_f * (100 - reserve) / 100


def _scenarios(samples: Mapping[str, np.ndarray]) -> np.ndarray:
    """Stack samples into (scenario, environment); a single value applies to every scenario."""
    arrays = {env: np.asarray(values, dtype=float).ravel() for env, values in samples.items()}
    empty = [env for env, values in arrays.items() if values.size == 0]
    if empty:
        raise PlanError(f"No simulated outcomes were given for {_names(empty)}")
    broken = [env for env, values in arrays.items() if not np.isfinite(values).all()]
    if broken:
        raise PlanError(f"The outcomes simulated for {_names(broken)} hold missing values")
    sizes = {values.size for values in arrays.values()} - {1}
    if len(sizes) > 1:
        raise PlanError(
            "Every environment needs the same number of simulated outcomes (outcome i of each "
            f"is one scenario); got {sorted(sizes)}"
        )
    count = sizes.pop() if sizes else 1
    return np.column_stack([np.broadcast_to(values, (count,)) for values in arrays.values()])


class _Scores(NamedTuple):
    """Counts per candidate allocation (rows of ``allocations``) over all scenarios."""

    overrun: np.ndarray  # (candidates, envs)
    hard_cutoff: np.ndarray  # (candidates,)
    reserve_use: np.ndarray  # (candidates,) mean soft overrun
    exhausted: np.ndarray  # (candidates,)


def _score(
    allocations: np.ndarray, outcomes: np.ndarray, hard: np.ndarray, buffer: float
) -> _Scores:
    over = outcomes[None, :, :] > allocations[:, None, :]
    excess = np.maximum(outcomes[None, :, :] - allocations[:, None, :], 0.0)
    soft_excess = excess[:, :, ~hard].sum(axis=2)
    return _Scores(
        overrun=over.sum(axis=1),
        hard_cutoff=over[:, :, hard].any(axis=2).sum(axis=1),
        reserve_use=soft_excess.mean(axis=1),
        exhausted=(soft_excess > buffer).sum(axis=1),
    )


def _outcome(
    envs: Sequence[str],
    allocation: np.ndarray,
    outcomes: np.ndarray,
    hard: np.ndarray,
    buffer: float,
) -> SimResult:
    scores = _score(allocation[None, :], outcomes, hard, buffer)
    count = outcomes.shape[0]
    return SimResult(
        allocations={env: float(a) for env, a in zip(envs, allocation, strict=True)},
        p_overrun={env: int(n) / count for env, n in zip(envs, scores.overrun[0], strict=True)},
        p_any_hard_cutoff=int(scores.hard_cutoff[0]) / count,
        reserve=ReserveOutlook(
            buffer=buffer,
            expected_use=float(scores.reserve_use[0]),
            p_exhausted=int(scores.exhausted[0]) / count,
        ),
    )


def _reference_percents(envs: Sequence[str]) -> dict[str, Fraction]:
    """The preset rescaled to the environments present, or an even split if any is unknown."""
    if all(env in PRESET_PERCENTS for env in envs):
        weight = {env: Fraction(PRESET_PERCENTS[env]) for env in envs}
    else:
        weight = {env: Fraction(1) for env in envs}
    scale = sum(weight.values(), Fraction(0))
    return {env: 100 * w / scale for env, w in weight.items()}


def _split_key(
    splits: np.ndarray, outcomes: np.ndarray, hard: np.ndarray, buffer: float, reference: np.ndarray
) -> list[tuple[int, int, int]]:
    scores = _score(splits.astype(float), outcomes, hard, buffer)
    distance = ((splits - reference[None, :]) ** 2).sum(axis=1)
    return [
        (int(c), int(e), int(d))
        for c, e, d in zip(scores.hard_cutoff, scores.exhausted, distance, strict=True)
    ]


def _greedy_split(
    outcomes: np.ndarray, hard: np.ndarray, units: int, reference: np.ndarray
) -> np.ndarray:
    split = np.zeros(len(hard), dtype=np.int64)
    need = np.ceil(outcomes).astype(np.int64)  # units that cover each scenario
    split[hard] = _cover_hard(need[:, hard], units)
    soft = np.flatnonzero(~hard).tolist()
    ordered = {j: np.sort(outcomes[:, j]) for j in soft}
    count = outcomes.shape[0]
    while split.sum() < units and soft:  # next unit where an overrun is likeliest
        exceeding = {j: count - np.searchsorted(ordered[j], split[j], "right") for j in soft}
        j = max(soft, key=lambda j: (exceeding[j], reference[j] - split[j]))
        if exceeding[j] == 0:
            break
        split[j] += 1
    while split.sum() < units:  # units that change no chance: move toward the preset
        split[int(np.argmax(reference - split))] += 1
    return split


def _cover_hard(need: np.ndarray, units: int) -> np.ndarray:
    """Units per hard env that cover the most scenarios ``units`` affords, as cheaply as can be.

    A scenario is covered when every hard env's allocation meets its need. The start funds
    every env to the same rank of its own needs, as high as affordable; then each pair of envs
    is re-split exactly (every division of the pair's units is tried, the others held) until
    no pair improves. With one or two hard envs the answer is therefore exact.
    """
    envs = need.shape[1]
    ranked = np.sort(need, axis=0)
    affordable = np.flatnonzero(ranked.sum(axis=1) <= units)  # row sums only grow
    split = ranked[affordable[-1]] if affordable.size else np.zeros(envs, dtype=np.int64)
    split = np.maximum(split, 0)
    improved = True
    while improved:
        improved = False
        for pair in itertools.combinations(range(envs), 2):
            better = _resplit_pair(need, split, pair, units)
            if better is not None:
                split, improved = better, True
    return split


def _resplit_pair(
    need: np.ndarray, split: np.ndarray, pair: tuple[int, int], units: int
) -> np.ndarray | None:
    """The best division of two envs' units (more scenarios covered, then fewer units), or
    None when the current one is already best."""
    e, f = pair
    others = [g for g in range(need.shape[1]) if g not in pair]
    held = (need[:, others] <= split[others]).all(axis=1)
    budget = units - int(split[others].sum())
    first = np.arange(budget + 1)[:, None]
    covered = held & (need[:, e] <= first) & (need[:, f] <= budget - first)
    cost_e = np.where(covered, need[:, e], 0).max(axis=1, initial=0)
    cost_f = np.where(covered, need[:, f], 0).max(axis=1, initial=0)
    coverage = covered.sum(axis=1)
    best = np.lexsort((cost_e + cost_f, -coverage))[0]
    now = (need <= split).all(axis=1).sum()
    if (-coverage[best], cost_e[best] + cost_f[best]) >= (-now, split[e] + split[f]):
        return None
    better = split.copy()
    better[e], better[f] = cost_e[best], cost_f[best]
    return better


def _polish(
    split: np.ndarray,
    outcomes: np.ndarray,
    hard: np.ndarray,
    buffer: float,
    reference: np.ndarray,
    rounds: int = 60,
) -> np.ndarray:
    """Move units between environments while that improves the exact objective.

    A pattern search: moves start at about a sixteenth of the budget and halve whenever no
    move of the current size helps, so fine steps do not mean hundreds of rounds.
    """
    moves = [(a, b) for a in range(len(split)) for b in range(len(split)) if a != b]
    best = _split_key(split[None, :], outcomes, hard, buffer, reference)[0]
    size = max(1, int(split.sum()) // 16)
    for _ in range(rounds):
        candidates = []
        for a, b in moves:
            if split[a] >= size:
                moved = split.copy()
                moved[a] -= size
                moved[b] += size
                candidates.append(moved)
        grid = np.array(candidates, dtype=np.int64).reshape(-1, len(split))
        keys = _split_key(grid, outcomes, hard, buffer, reference)
        i = min(range(len(keys)), key=keys.__getitem__, default=None)
        if i is not None and keys[i] < best:
            split, best = candidates[i], keys[i]
        elif size == 1:
            break
        else:
            size //= 2
    return split


# --------------------------------------------------------------------------- wording


def _pct(value: Decimal) -> str:
    return format(value.quantize(Decimal("0.01")).normalize(), "f")


def _names(envs: Sequence[str]) -> str:
    return envs[0] if len(envs) == 1 else ", ".join(envs[:-1]) + " and " + envs[-1]


def _whole_cents(amount: Decimal) -> bool:
    return amount * 100 == (amount * 100).to_integral_value()
