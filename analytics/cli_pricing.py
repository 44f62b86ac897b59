"""``python -m analytics reconcile | reprice | prices``: the Reconcile, What-if and Price book
pages from the shell, through the same functions.

Summaries a script would not parse (totals, unpriced usage) go to stderr, so ``--format csv``
and ``--format json`` print nothing but the data on stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from analytics import exports
from analytics.access import SYSTEM, Principal
from analytics.cli import _day
from analytics.queries import data_range
from analytics.store import get_engine

if TYPE_CHECKING:
    from analytics.pricing import Scenario

FORMATS = ("table", "csv", "json")
_RECONCILE_MONEY = ("billed_usd", "estimated_usd", "difference_usd")
_REPRICE_MONEY = ("baseline_usd", "scenario_usd", "difference_usd")


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    add_reconcile_parser(sub, common)
    _add_reprice_parser(sub, common)
    _add_prices_parser(sub, common)


def add_reconcile_parser(sub: argparse._SubParsersAction,
                         common: argparse.ArgumentParser) -> None:
    """``reconcile`` under ``sub``: the top level here, and ``report`` in cli.py."""
    p = sub.add_parser("reconcile", parents=[common],
                       help="billed vs estimated cost by day, project and model "
                            "(default: the last month of data, as the page opens)")
    p.add_argument("--start", type=_day)
    p.add_argument("--end", type=_day)
    p.add_argument("--all", action="store_true", help="all of time instead of the last days")
    p.add_argument("--project", help="only this project id")
    p.add_argument("--threshold-pct", type=float, default=1.0,
                   help="flag differences above this percent of the billed cost (default 1)")
    p.add_argument("--min-usd", type=float, default=0.01,
                   help="ignore differences of at most this many dollars (default 0.01)")
    p.add_argument("--by", choices=("row", "day", "project", "model"), default="row",
                   help="one row per day, project and model (default), or totals by one")
    p.add_argument("--flagged", action="store_true", help="only the flagged rows")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.set_defaults(handler=_reconcile)


def _add_reprice_parser(sub: argparse._SubParsersAction,
                        common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("reprice", parents=[common], help="what-if: re-cost a period's usage")
    p.add_argument("--start", type=_day, required=True)
    p.add_argument("--end", type=_day, required=True)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--prices", metavar="FILE", help="another price list (price file CSV)")
    which.add_argument("--migrate", metavar="FROM:TO:SHARE[:PROJECT,...]",
                       help="move traffic, e.g. gpt-4o:gpt-5-mini:70%%:Production")
    which.add_argument("--scenario", metavar="NAME", help="a saved scenario")
    p.add_argument("--project", help="only this project id")
    p.add_argument("--by", choices=("project,model", "project", "model", "month"),
                   default="project,model")
    p.add_argument("--forecast", action="store_true",
                   help="also show the current period's forecast under the scenario")
    p.add_argument("--save", metavar="NAME", help="save the scenario under this name")
    p.add_argument("--replace", action="store_true", help="with --save: replace that name")
    p.add_argument("--user", default="cli", help="recorded as the saver (default: cli)")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.set_defaults(handler=_reprice)


def _add_prices_parser(sub: argparse._SubParsersAction,
                       common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("prices", parents=[common], help="the price book")
    psub = p.add_subparsers(dest="prices_command", required=True)
    ls = psub.add_parser("list", parents=[common], help="prices in effect on a day")
    ls.add_argument("--at", type=_day, help="the day (default: today)")
    ls.add_argument("--all", action="store_true", help="also replaced and scheduled rows")
    ls.add_argument("--format", choices=FORMATS, default="table")
    ls.set_defaults(handler=_prices_list)
    hist = psub.add_parser("history", parents=[common], help="prices added in the app or CLI")
    hist.add_argument("--format", choices=FORMATS, default="table")
    hist.set_defaults(handler=_prices_history)
    un = psub.add_parser("unpriced", parents=[common], help="usage the book cannot price")
    un.add_argument("--start", type=_day)
    un.add_argument("--end", type=_day)
    un.add_argument("--format", choices=FORMATS, default="table")
    un.set_defaults(handler=_prices_unpriced)
    add = psub.add_parser("add", parents=[common], help="add a price (kept with its history)")
    add.add_argument("--provider", required=True)
    add.add_argument("--family", required=True, help="model family, e.g. gpt-5-mini")
    add.add_argument("--effective-from", required=True, help="first day it applies")
    add.add_argument("--input", required=True, help="$ per 1M input tokens")
    add.add_argument("--output", required=True, help="$ per 1M output tokens")
    add.add_argument("--cached-input", default="", help="$ per 1M cached input tokens")
    add.add_argument("--cache-write", default="", help="$ per 1M cache-write tokens")
    add.add_argument("--tier", default="default", help="service tier (default, flex, ...)")
    add.add_argument("--batch-discount", default="0.5", help="batch multiplier (default 0.5)")
    add.add_argument("--source", default="", help="where the price comes from")
    add.add_argument("--user", default="cli", help="recorded as the author (default: cli)")
    add.set_defaults(handler=_prices_add)


def _acting(user: str) -> Principal:
    """SYSTEM, recorded in the audit log under the name the shell user gave."""
    return dataclasses.replace(SYSTEM, username=user)


def _reconcile(args: argparse.Namespace) -> int:
    """Every compared row (the default), or sums by day, project or model (the page's
    summary): both without pandas, which alone takes a third of issue #9's half second."""
    from analytics.reconcile_rows import (
        DEFAULT_DAYS,
        compared_rows,
        recent_range,
        summed,
        with_project_names,
    )

    if args.all and (args.start or args.end):
        raise ValueError("Ask for --all or for --start/--end, not both.")
    engine = get_engine(args.db)
    start, end = args.start, args.end
    if not (args.all or start or end):  # as the page opens: a year would be 100k lines
        start, end = recent_range(engine, SYSTEM, project=args.project) or (None, None)
        if start is not None:
            print(f"{start} to {end}: the last {DEFAULT_DAYS} days of data at most (--all "
                  "for all of time).", file=sys.stderr)
    compared = compared_rows(engine, SYSTEM, start, end, args.project, args.threshold_pct,
                             args.min_usd)
    found = with_project_names(engine, compared)
    if args.by == "row":
        hidden = {"unpriced", "tokens", *(("project_id", "models") if args.format == "table"
                                          else ())}
    else:
        found = summed(found, [args.by], args.threshold_pct, args.min_usd)
        hidden = set()
    columns = [c for c in found.columns if c not in hidden]
    pick = itemgetter(*(found.columns.index(c) for c in columns))
    flagged = found.columns.index("flagged")
    kept = [pick(r) for r in found.rows if r[flagged] or not args.flagged]
    pct = columns.index("difference_pct")  # to a hundredth of a percent, as the page shows it
    table = exports.Rows(columns, [(*r[:pct], round(r[pct], 2), *r[pct + 1:]) for r in kept])
    exports.emit(table, args.format, _RECONCILE_MONEY)
    flags, billed, estimated = (list(map(itemgetter(compared.columns.index(c)), compared.rows))
                                for c in ("flagged", "billed_usd", "estimated_usd"))
    print(f"{sum(flags)} of {len(flags)} rows differ by more than {args.threshold_pct:g}%; "
          f"billed ${_total(billed):,.2f}, estimated ${_total(estimated):,.2f}",
          file=sys.stderr)
    return 0


def _total(values: list[float]) -> float:
    """The sum of the figures present (NaN is a missing one)."""
    return math.fsum(v for v in values if not math.isnan(v))


def _reprice(args: argparse.Namespace) -> int:
    from analytics.pricing import PriceListScenario, load_price_book
    from analytics.scenarios import load_scenario, parse_migration, run_scenario, save_scenario

    engine = get_engine(args.db)
    if args.prices:
        scenario = PriceListScenario(load_price_book(args.prices), Path(args.prices).stem)
    elif args.migrate:
        scenario = parse_migration(engine, SYSTEM, args.migrate)
    else:
        scenario = load_scenario(engine, args.scenario)
    result = run_scenario(engine, SYSTEM, scenario, args.start, args.end, args.project)
    if args.by == "month":
        frame = result.monthly.assign(month=result.monthly["month"].dt.strftime("%Y-%m"))
    else:
        keys = {"project,model": ["project_id", "project", "model"],
                "project": ["project_id", "project"], "model": ["model"]}[args.by]
        frame = (result.by_project_model.groupby(keys, as_index=False)
                 [[*_REPRICE_MONEY, "unpriced_rows"]].sum(min_count=1))
    exports.emit(frame, args.format, _REPRICE_MONEY)
    print(f"baseline ${result.baseline_usd:,.2f}, scenario ${result.scenario_usd:,.2f}, "
          f"difference {exports.dollars(result.difference_usd, signed=True)}", file=sys.stderr)
    for row in result.unpriced.itertuples():
        print(f"warning: not in the sums: {row.model} ({row.reason}), {row.rows} rows",
              file=sys.stderr)
    if args.forecast:
        _print_forecast_effect(engine, scenario)
    if args.save:
        save_scenario(engine, _acting(args.user), scenario, args.save, replace=args.replace)
        print(f"saved scenario '{args.save}'", file=sys.stderr)
    return 0


def _print_forecast_effect(engine: Engine, scenario: Scenario) -> None:
    from analytics.org import anchor_day
    from analytics.scenarios import forecast_effect

    last = data_range(engine, SYSTEM)[1]
    if last is None:
        print("no data to forecast from", file=sys.stderr)
        return
    as_of = min(last, datetime.now(UTC).date())
    effect = forecast_effect(engine, SYSTEM, scenario, as_of, anchor_day(engine))
    b = effect.baseline
    print(f"period {b.period_start}..{b.period_end} as of {b.as_of}: forecast "
          f"${b.forecast:,.2f} (${b.low:,.2f}-${b.high:,.2f}); under the scenario "
          f"${effect.forecast:,.2f} (${effect.low:,.2f}-${effect.high:,.2f}), remaining days "
          f"scaled by {effect.ratio:.3f} (scenario/baseline, last 28 days)", file=sys.stderr)


def _prices_list(args: argparse.Namespace) -> int:
    from analytics.price_store import current_book
    from analytics.pricing import price_table

    table = price_table(current_book(get_engine(args.db)), args.at or datetime.now(UTC).date())
    if not args.all:
        table = table[table["status"] == "in effect"].drop(columns=["status"])
    exports.emit(table, args.format)
    return 0


def _prices_history(args: argparse.Namespace) -> int:
    from analytics.price_store import price_history

    exports.emit(price_history(get_engine(args.db)), args.format)
    return 0


def _prices_unpriced(args: argparse.Namespace) -> int:
    from analytics.spend_estimates import unpriced_usage

    frame = unpriced_usage(get_engine(args.db), SYSTEM, args.start, args.end)
    exports.emit(frame, args.format)
    return 0


def _prices_add(args: argparse.Namespace) -> int:
    from analytics.price_store import add_price

    row = {"provider": args.provider, "family": args.family, "service_tier": args.tier,
           "effective_from": args.effective_from, "input_per_1m": args.input,
           "cached_input_per_1m": args.cached_input, "cache_write_per_1m": args.cache_write,
           "output_per_1m": args.output, "batch_discount": args.batch_discount,
           "source": args.source}
    price = add_price(get_engine(args.db), _acting(args.user), row)
    print(f"added {price.provider} {price.family} ({price.service_tier}) from "
          f"{price.effective_from}: ${price.input_per_1m} in / ${price.output_per_1m} out "
          "per 1M tokens")
    return 0
