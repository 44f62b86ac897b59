"""``python -m analytics allocate``: the Allocation page's plan-vs-reality figures from the shell.

    python -m analytics allocate --total 5000 --split dev=20,staging=10,prod=60,analytics=10 \\
        --reserve 10 --as-of 2026-11-20 --format table

A split value is a percent of the budget after the reserve (``20`` or ``20%``), a fixed dollar
amount (``$500``), ``even`` or ``proportional`` (in proportion to last quarter's spend).
``--plan NAME`` judges a saved plan instead.
"""

from __future__ import annotations

import argparse
import json
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from analytics import exports
from analytics.access import SYSTEM
from analytics.cli import _day
from analytics.store import get_engine

if TYPE_CHECKING:
    from analytics.allocation import Limit, Method, Share
    from analytics.planning import Review

CLI_PLAN_NAME = "Command line"
_MONEY = ("allocation", "actual_to_date", "forecast", "low", "high")


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("allocate", parents=[common],
                       help="a budget split across environments against spend and forecasts")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--split", help="e.g. dev=20,staging=10,prod=60,analytics=10")
    source.add_argument("--plan", help="judge this saved plan")
    p.add_argument("--total", type=_number, help="the period's budget in USD (with --split)")
    p.add_argument("--reserve", type=_number,
                   help="percent of the total kept as a reserve (default: 10)")
    p.add_argument("--limits",
                   help="e.g. dev=hard,prod=soft (default: hard for Development and Staging, "
                        "soft for the others)")
    p.add_argument("--as-of", type=_day, help="judge as of this day (default: newest data)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(handler=_allocate)


def _number(text: str) -> Decimal:
    """A number as typed, with an optional $ and thousands commas."""
    try:
        value = Decimal(text.strip().lstrip("$").replace(",", ""))
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not value.is_finite():
        raise argparse.ArgumentTypeError(f"'{text}' is not a number")
    return value


def parse_split(text: str, known: list[str], limits_text: str = "") -> list[Share]:
    """Shares from ``dev=20,prod=$500,analytics=even``; limits from ``dev=hard,prod=soft``."""
    from analytics.allocation import LIMITS, PRESET_LIMITS, PlanError, Share

    limits: dict[str, Limit] = {}
    for env, value in _pairs(limits_text, known, "--limits"):
        if value.lower() not in LIMITS:
            raise PlanError(f"The limit for {env} is '{value}': use hard or soft")
        limits[env] = value.lower()  # type: ignore[assignment]  # checked just above
    shares = []
    for env, value in _pairs(text, known, "--split"):
        limit = limits.get(env, PRESET_LIMITS.get(env, "soft"))
        shares.append(Share(env, *_method(env, value), limit))
    unused = sorted(set(limits) - {s.environment for s in shares})
    if unused:
        raise PlanError(f"--limits names {', '.join(unused)}, which --split has no share for")
    return shares


def _pairs(text: str, known: list[str], option: str) -> list[tuple[str, str]]:
    from analytics.allocation import PlanError
    from analytics.planning import resolve_environment

    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        env, sep, value = item.partition("=")
        if not sep or not env.strip() or not value.strip():
            raise PlanError(f"{option} takes name=value pairs separated by commas, not '{item}'")
        pairs.append((resolve_environment(env, known), value.strip()))
    return pairs


def _method(env: str, value: str) -> tuple[Method, Decimal | None]:
    from analytics.allocation import PlanError

    lowered = value.lower()
    if lowered == "even":
        return "even", None
    if lowered in ("prop", "proportional"):
        return "proportional", None
    method: Method = "fixed" if value.startswith("$") else "percent"
    try:
        return method, _number(value.rstrip("%"))
    except argparse.ArgumentTypeError:
        raise PlanError(f"The share for {env} is '{value}': use a percent (20), dollars ($500), "
                        "even or proportional") from None


def _allocate(args: argparse.Namespace) -> int:
    from analytics.allocation import PRESET_RESERVE_PCT, Plan, PlanError
    from analytics.planning import known_environments, outlook, review_plan
    from analytics.plans import load_plan

    engine = get_engine(args.db)
    if args.plan:
        given = [o for o, v in (("--total", args.total), ("--reserve", args.reserve),
                                ("--limits", args.limits)) if v is not None]
        if given:
            raise PlanError(f"A saved plan has its own budget, reserve and limits: drop "
                            f"{', '.join(given)} or use --split")
        plan = load_plan(engine, args.plan).plan
    else:
        if args.total is None:
            raise PlanError("Give the period's budget with --total (in USD)")
        shares = parse_split(args.split, known_environments(engine, SYSTEM), args.limits or "")
        reserve = PRESET_RESERVE_PCT if args.reserve is None else args.reserve
        plan = Plan(CLI_PLAN_NAME, args.total, reserve, shares)
    result = review_plan(plan, outlook(engine, SYSTEM, args.as_of))
    if args.format == "json":
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(render_table(result))
    return 0


def render_table(result: Review) -> str:
    """The review as a terminal table, then the reserve and the warnings in words."""
    from analytics.allocation import RESERVE, UNALLOCATED

    view, reserve = result.outlook, result.reserve
    shown = result.table()
    shown["p_overrun"] = [None if p is None or p != p else f"{p:.0%}" for p in shown["p_overrun"]]
    shown["environment"] = [env if level == "environment" else "" for env, level in
                            zip(shown["environment"].fillna("(none)"), shown["level"],
                                strict=True)]
    shown["project"] = shown["project"].fillna("")
    shown = shown.drop(columns="level")
    plan = result.plan
    lines = [
        f"Plan '{plan.name}': ${plan.total:,.2f} for {view.period.start}..{view.period.end}, "
        f"as of {view.as_of} ({view.fraction_elapsed:.0%} of the period gone)",
        exports.to_table(shown, money=_MONEY),
        f"Reserve: ${result.allocations[RESERVE]:,.2f} ({plan.reserve_pct}%)"
        + (f" + ${result.allocations[UNALLOCATED]:,.2f} unallocated"
           if UNALLOCATED in result.allocations else "")
        + f"; expected use ${reserve.expected_use:,.2f}; chance it runs out "
          f"{reserve.p_exhausted:.0%}",
    ]
    lines += [f"warning: {flag}" for flag in result.flags]
    return "\n".join(lines)
