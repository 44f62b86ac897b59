"""``python -m analytics``: the same functions the app calls, from the shell.

Every command takes ``--db URL`` (else ``BURNRATE_DB_URL``, else the embedded SQLite file).
Errors a person can cause print one plain line to stderr and exit non-zero; no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from sqlalchemy.exc import OperationalError, SQLAlchemyError

from analytics import exports
from analytics.access import SYSTEM, AccessDenied
from analytics.queries import DIMENSIONS
from analytics.store import get_engine

if TYPE_CHECKING:
    from analytics.ingest import ImportResult

Handler = Callable[[argparse.Namespace], int]
_COMMANDS: dict[str, Handler] = {}


def command(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _COMMANDS[name] = fn
        return fn
    return register


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date like 2026-09-30") from None


def feature_modules() -> list[ModuleType]:
    """Every ``analytics/cli_*.py``: each adds its own sub-commands through ``register``, so a
    feature's commands live beside nothing else's.

    Every command imports all of them, so at the top a module imports only what this file
    already loads (the store, queries, exports); its feature's own modules are imported inside
    the command functions: otherwise every command, a quick report too, would pay for the
    imports of all the others (issue #9)."""
    package = Path(__file__).resolve().parent
    return [importlib.import_module(f"analytics.{p.stem}")
            for p in sorted(package.glob("cli_*.py"))]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m analytics", description=__doc__)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", help="store URL (default: BURNRATE_DB_URL or the SQLite file)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("import", parents=[common], help="import export files or folders")
    p.add_argument("paths", nargs="+")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--user", default="cli", help="recorded as the importer (default: cli)")

    p = sub.add_parser("report", parents=[common], help="spend reports")
    rsub = p.add_subparsers(dest="report", required=True)
    r = rsub.add_parser("spend", parents=[common], help="billed cost and tokens by a dimension")
    r.add_argument("--by", choices=DIMENSIONS, default="project")
    r.add_argument("--start", type=_day)
    r.add_argument("--end", type=_day)
    r.add_argument("--project", help="only this project id")
    r.add_argument("--format", choices=("table", "csv", "json"), default="table")
    importlib.import_module("analytics.cli_pricing").add_reconcile_parser(rsub, common)

    for module in feature_modules():
        module.register(sub, common)

    p = sub.add_parser("demo", parents=[common], help="fill the store with a simulated org")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--end", type=_day, help="last day of the demo data (default: yesterday)")
    return parser


@command("import")
def _import(args: argparse.Namespace) -> int:
    from analytics.importers import sources_from_paths
    from analytics.ingest import import_sources

    engine = get_engine(args.db)
    sources = sources_from_paths(args.paths)
    if not sources:
        print("error: no .csv or .json export files found in " + ", ".join(args.paths),
              file=sys.stderr)
        return 1
    results = import_sources(engine, sources, user=args.user)
    if args.json:
        print(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        for result in results:
            print(_import_line(result), file=sys.stdout if result.ok else sys.stderr)
    if all(r.skipped for r in results):
        print("error: none of the files found in " + ", ".join(args.paths) + " is an export",
              file=sys.stderr)
        return 1
    # Settle the imported days for reports now (spend_daily), so the next report is quick.
    from analytics.spend_daily import refresh

    refresh(engine)
    return 0 if all(r.ok for r in results) else 1


def _import_line(r: ImportResult) -> str:
    if r.skipped:
        return f"skipped: {r.file}: not a recognised export ({r.note})"
    if not r.ok:
        return f"error: {r.error}"
    span = f"{r.first_day}..{r.last_day}" if r.first_day else "no days"
    money = f", ${float(r.total_usd):,.2f}" if r.total_usd is not None else ""
    return (f"{r.file}: {r.format}, {r.rows:,} rows, {r.new:,} new, {r.replaced:,} replaced, "
            f"{span}{money}")


@command("report")
def _report(args: argparse.Namespace) -> int:
    from analytics.spend_daily import report_rows

    engine = get_engine(args.db)
    table = report_rows(engine, SYSTEM, [args.by], args.start, args.end, args.project)
    if table is None:  # a grouping the rollup does not settle alike: from usage, in pandas
        from analytics.spend_estimates import spend_with_estimates

        table = exports.as_rows(spend_with_estimates(engine, SYSTEM, args.by, args.start,
                                                     args.end, args.project))
    columns = ["key" if c == args.by else c for c in table.columns]
    ordered = ["key", *(["name"] if "name" in columns else []), "cost_usd", "basis",
               "input_tokens", "cached_input_tokens", "output_tokens", "requests"]
    order = [columns.index(c) for c in ordered + [c for c in columns if c not in ordered]]
    exports.emit(exports.Rows([columns[i] for i in order],
                              [[row[i] for i in order] for row in table.rows]), args.format)
    return 0


@command("demo")
def _demo(args: argparse.Namespace) -> int:
    from analytics.demo import load_demo

    engine = get_engine(args.db)
    results = load_demo(engine, seed=args.seed, days=args.days, end=args.end)
    for result in results:
        print(_import_line(result))
    return 0 if all(r.ok for r in results) else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = getattr(args, "handler", None) or _COMMANDS[args.command]
    try:
        return handler(args)
    except AccessDenied as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OperationalError as exc:
        print(f"error: the store cannot be reached ({_db_reason(exc)}). Check --db or "
              "BURNRATE_DB_URL.", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `... | head` closed the pipe: not an error worth a traceback
        sys.stderr.close()
        return 0
    except SQLAlchemyError as exc:
        print(f"error: the store refused the operation ({type(exc.orig or exc).__name__}).",
              file=sys.stderr)
        return 1


def _db_reason(exc: OperationalError) -> str:
    """The driver's first line, without the SQL or its parameters."""
    return str(exc.orig).splitlines()[0] if exc.orig else "connection failed"
