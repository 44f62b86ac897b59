"""``python -m analytics forecast`` and ``budgets list|add|remove|check``: the Forecast page
from the shell. ``budgets check`` exits 3 when any alert fires, so cron can act on it."""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from analytics import exports
from analytics.access import SYSTEM, Principal
from analytics.cli import _day
from analytics.store import get_engine

if TYPE_CHECKING:
    from analytics.budgets import Threshold

ALERT_EXIT = 3


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("forecast", parents=[common],
                       help="period-end spend forecast with its 80%% interval")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--project", help="only this project id")
    where.add_argument("--env", help="only this environment (e.g. Production)")
    p.add_argument("--as-of", type=_day, help="use only data up to this day (default: the "
                   "last day with billed cost)")
    p.add_argument("--period", choices=("month", "quarter", "year"), default="month")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(handler=_forecast)

    b = sub.add_parser("budgets", parents=[common], help="budgets and their alerts")
    bsub = b.add_subparsers(dest="budgets_command", required=True)
    ls = bsub.add_parser("list", parents=[common], help="the budgets set")
    ls.add_argument("--format", choices=("table", "json"), default="table")
    ls.set_defaults(handler=_list)

    add = bsub.add_parser("add", parents=[common], help="set a budget (Owner action)")
    add.add_argument("name")
    add.add_argument("--amount", required=True, help="dollars per period, e.g. 5000")
    add.add_argument("--scope", default="org", help="org, project:<id> or env:<name>")
    add.add_argument("--period", choices=("month", "quarter", "year"), default="month")
    add.add_argument("--anchor-day", type=int,
                     help="billing day periods start on (default: the org's)")
    add.add_argument("--limit", choices=("soft", "hard"), default="soft")
    add.add_argument("--threshold", action="append", metavar="PCT:ACTION",
                     help="e.g. 80:notify (repeat; default 50:notify, 75:page on-call, "
                          "90:freeze development)")
    add.add_argument("--reserve", default="0", help="emergency reserve, %% of the amount")
    add.add_argument("--replace", action="store_true", help="replace a budget of this name")
    add.add_argument("--user", default="cli", help="recorded in the audit log")
    add.set_defaults(handler=_add)

    rm = bsub.add_parser("remove", parents=[common], help="delete a budget (Owner action)")
    rm.add_argument("name")
    rm.add_argument("--user", default="cli", help="recorded in the audit log")
    rm.set_defaults(handler=_remove)

    chk = bsub.add_parser("check", parents=[common],
                          help="crossed and forecast thresholds; exit 3 when an alert fires")
    chk.add_argument("--as-of", type=_day, help="use only data up to this day")
    chk.add_argument("--no-send", action="store_true",
                     help="store new alerts in the app but send no webhook or email")
    chk.add_argument("--format", choices=("table", "json"), default="table")
    chk.set_defaults(handler=_check)


def _scope(args: argparse.Namespace) -> str:
    if args.project:
        return f"project:{args.project}"
    if args.env:
        return f"env:{args.env}"
    return "org"


def _forecast(args: argparse.Namespace) -> int:
    from analytics.budget_store import budget_for, list_budgets
    from analytics.budgets import budget_status
    from analytics.forecasting import forecast_scope
    from analytics.org import anchor_day

    engine = get_engine(args.db)
    scope = _scope(args)
    budget = budget_for(list_budgets(engine, SYSTEM), scope, args.period)
    anchor = budget.anchor_day if budget else anchor_day(engine)
    result = forecast_scope(engine, SYSTEM, scope, args.as_of, args.period, anchor)
    out: dict[str, Any] = {
        "scope": scope,
        "as_of": result.as_of.isoformat(),
        "period_start": result.period_start.isoformat(),
        "period_end": result.period_end.isoformat(),
        "actual_to_date_usd": result.actual_to_date,
        "forecast_usd": result.forecast,
        "low_usd": result.low,
        "high_usd": result.high,
        "interval": result.interval,
        "method": result.method,
        "rough": result.rough,
    }
    if budget is not None:
        status = budget_status(budget, result)
        out |= {"budget": budget.name, "budget_usd": float(budget.amount),
                "p_over_budget": round(status.p_over_budget, 3),
                "breach_date": status.breach_date.isoformat() if status.breach_date else None}
    if args.format == "json":
        print(json.dumps(out, indent=2))
        return 0
    print(f"{scope}: {result.period_start} to {result.period_end}, data to {result.as_of}")
    print(f"  spent so far      ${result.actual_to_date:,.2f}")
    print(f"  period-end        ${result.forecast:,.2f} "
          f"(80% interval ${result.low:,.2f} to ${result.high:,.2f}, method {result.method})")
    if result.rough:
        print("  rough: under two weeks of history, the interval is wide")
    if budget is not None:
        breach = out["breach_date"] or "not forecast"
        print(f"  budget '{budget.name}' ${budget.amount:,.2f}: chance of ending over "
              f"{out['p_over_budget']:.0%}, crossed around {breach}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from analytics.budget_store import budget_to_dict, list_budgets

    budgets = [budget_to_dict(b) for b in list_budgets(get_engine(args.db), SYSTEM)]
    if args.format == "json":
        print(json.dumps(budgets, indent=2))
        return 0
    if not budgets:
        print("No budgets set. Add one with: python -m analytics budgets add NAME --amount N")
        return 0
    for b in budgets:
        marks = ", ".join(f"{t['pct']}% {t['action']}" for t in b["thresholds"])
        print(f"{b['name']}: ${Decimal(b['amount']):,.2f} per {b['kind']} (billing day "
              f"{b['anchor_day']}), {b['scope']}, {b['limit']} limit, reserve "
              f"{b['reserve_pct']}%; thresholds {marks or 'none'}")
    return 0


def _threshold(text: str) -> Threshold:
    from analytics.budgets import BudgetError, Threshold

    pct, sep, action = text.partition(":")
    try:
        value = int(pct.strip().rstrip("%"))
    except ValueError:
        value = 0
    if not sep or not action.strip() or value <= 0:
        raise BudgetError(f"'{text}' is not PCT:ACTION, e.g. 80:notify.")
    return Threshold(value, action.strip())


def _decimal(text: str, what: str) -> Decimal:
    from analytics.budgets import BudgetError

    try:
        value = Decimal(text.replace(",", "").lstrip("$"))
    except InvalidOperation:
        raise BudgetError(f"The {what} '{text}' is not a number.") from None
    if not value.is_finite():
        raise BudgetError(f"The {what} '{text}' is not a number.")
    return value


def _add(args: argparse.Namespace) -> int:
    from analytics.budget_store import save_budget
    from analytics.budgets import DEFAULT_THRESHOLDS, Budget
    from analytics.org import anchor_day

    engine = get_engine(args.db)
    thresholds = (tuple(_threshold(t) for t in args.threshold) if args.threshold
                  else DEFAULT_THRESHOLDS)
    budget = Budget(
        name=args.name, amount=_decimal(args.amount, "amount"), kind=args.period,
        anchor_day=args.anchor_day or anchor_day(engine), scope=args.scope,
        limit=args.limit, thresholds=thresholds,
        reserve_pct=_decimal(args.reserve, "reserve"))
    save_budget(engine, Principal(args.user, "owner", None), budget, replace=args.replace)
    print(f"saved budget '{budget.name}'")
    return 0


def _remove(args: argparse.Namespace) -> int:
    from analytics.budget_store import delete_budget

    delete_budget(get_engine(args.db), Principal(args.user, "owner", None), args.name)
    print(f"removed budget '{args.name}'")
    return 0


def _check(args: argparse.Namespace) -> int:
    from analytics.alerts import checks_frame, run_check

    run = run_check(get_engine(args.db), SYSTEM, args.as_of, send=not args.no_send)
    if args.format == "json":
        print(exports.to_json(checks_frame(run.checks)))
    else:
        if not run.checks:
            print("No budgets set.")
        for c in run.checks:
            if c.status is None:
                print(f"{c.budget.name}: not judged, {c.problem}")
                continue
            s = c.status
            print(f"{c.budget.name} ({s.period.start} to {s.period.end}): spent "
                  f"${s.actual_usd:,.2f}, forecast ${s.forecast_usd:,.2f} of "
                  f"${c.budget.amount:,.2f}")
            print("  crossed:  " + (", ".join(f"{t.pct}% ({t.action})"
                                              for t in s.crossed_actual) or "none"))
            print("  forecast: " + (", ".join(f"{t.pct}% ({t.action})"
                                              for t in s.crossed_forecast) or "none"))
            for a in s.alerts:
                print(f"  {a.level.upper()}: {a.message}")
    for line in run.delivery:
        print(line, file=sys.stderr)
    if run.new_alerts:
        print(f"{len(run.new_alerts)} new alert(s) stored", file=sys.stderr)
    return ALERT_EXIT if run.firing else 0
