"""Read-path benchmark (issue 9): every query a page or CLI report makes, on a large store.

    .venv/bin/python -m bench.query_bench [--rows 100000,1000000] [--pg ADMIN_URL]

For each size a store is built once and kept in ``bench/out/`` (``queries_<rows>.db``; on
PostgreSQL a database ``burnrate_qbench_<rows>`` that is kept too, so reruns skip the import):
the usage export of ``bench.gen_usage`` and a matching cost export (17-column OpenAI format,
grouped by day, project and line item, priced from the same usage at list price), both through
``analytics.ingest.import_sources`` as a user would load them.

Each path runs once to warm up, then three times; the median is reported. Forecasts are timed
with their cache cleared each run (the pages and CLI would otherwise hit it). Each CLI report
(``report spend --by`` every dimension over all time and by project over the last 30 days of
data; ``report reconcile`` with its default, the last 30 days of data, as rows and summed by
day, project and model, and over all of time as rows and by day)
is a subprocess with its output to a pipe, interpreter start-up included, as a person or cron
would see it.

Targets: every CLI report under 0.5 s; forecasts for 50 projects under 5 s in total.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine, create_engine, delete, make_url, text

from bench.gen_usage import write_usage_export
from bench.import_bench import DEFAULT_ROWS, machine, parse_rows, publish

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
REPEATS = 3
FORECAST_PROJECTS = 50
TARGET_CLI_S = 0.5
TARGET_FORECASTS_S = 5.0
SLOW_S = 10.0
SPEND_DIMS = ("project", "model", "api_key", "user", "day", "week", "month")
ORG_ID, ORG_NAME = "org-benchBurnrate000000001", "Bench Org"


@dataclass
class Timing:
    backend: str
    rows: int
    path: str
    seconds: float
    target: float | None = None
    note: str = ""

    @property
    def verdict(self) -> str:
        if self.target is None:
            return ""
        return "met" if self.seconds < self.target else "MISSED"


# --- the store ----------------------------------------------------------------------------


def write_cost_export(usage_csv: Path, path: Path) -> Path:
    """The billed cost export matching ``usage_csv``: per day, project and ``<model>, input``
    / ``<model>, output`` line item, at list price from the shipped price book."""
    from analytics.demo import COST_HEADER_V2
    from analytics.pricing import estimate_cost, load_price_book

    cols = ["start_time", "project_id", "model", "batch", "service_tier", "input_tokens",
            "output_tokens", "input_cached_tokens"]
    usage = pd.read_csv(usage_csv, usecols=cols)
    usage = (usage.groupby(["start_time", "project_id", "model", "batch", "service_tier"],
                           as_index=False)[["input_tokens", "output_tokens",
                                            "input_cached_tokens"]].sum())
    usage = usage.rename(columns={"input_cached_tokens": "cached_input_tokens"})
    usage["day"] = pd.to_datetime(usage["start_time"], unit="s").dt.normalize()
    usage["provider"] = "openai"
    book = load_price_book()

    def priced(frame: pd.DataFrame) -> pd.Series:
        """List price; tiers the book does not price (the generator's ``scale``, most
        ``priority``...) are billed at the default tier, as an invoice has no gaps."""
        exact = estimate_cost(frame, book)["estimated_cost_usd"]
        default = estimate_cost(frame.assign(service_tier="default"), book)
        return exact.fillna(default["estimated_cost_usd"]).fillna(0.0)

    inp = priced(usage.assign(output_tokens=0))
    out = priced(usage.assign(input_tokens=0, cached_input_tokens=0))
    usage = usage.assign(input_usd=inp.to_numpy(), output_usd=out.to_numpy(),
                         input_qty=usage["input_tokens"], output_qty=usage["output_tokens"])
    daily = usage.groupby(["start_time", "project_id", "model"], as_index=False)[
        ["input_usd", "output_usd", "input_qty", "output_qty"]].sum()
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(COST_HEADER_V2)
        for r in daily.itertuples(index=False):
            start = int(r.start_time)
            s_iso = datetime.fromtimestamp(start, UTC).isoformat()
            e_iso = datetime.fromtimestamp(start + 86_400, UTC).isoformat()
            for kind, usd, qty in (("input", r.input_usd, r.input_qty),
                                   ("output", r.output_usd, r.output_qty)):
                writer.writerow([start, start + 86_400, s_iso, e_iso, f"{usd:.10f}", "usd",
                                 f"{r.model}, {kind}", r.project_id, "", ORG_ID, ORG_NAME,
                                 "", "", "", "", int(qty), "tokens"])
    return path


def _exports(rows: int, out: Path) -> tuple[Path, Path]:
    usage = out / f"usage_{rows}_day.csv"
    if not usage.exists():
        write_usage_export(usage, rows, "day")
    cost = out / f"cost_{rows}_day.csv"
    if not cost.exists():
        write_cost_export(usage, cost)
    return usage, cost


def _load(url: str, usage: Path, cost: Path) -> None:
    from analytics.ingest import import_sources
    from analytics.store import get_engine

    start = time.perf_counter()
    results = import_sources(get_engine(url), [(usage.name, usage), (cost.name, cost)])
    for r in results:
        if not r.ok:
            raise SystemExit(f"import of {r.file} failed: {r.error}")
    print(f"  imported {usage.name} + {cost.name} in {time.perf_counter() - start:.1f} s",
          flush=True)


def sqlite_store(rows: int, out: Path = OUT) -> str:
    """The cached SQLite store for ``rows``; built (and marked complete) on first use."""
    db = out / f"queries_{rows}.db"
    done = out / f"queries_{rows}.ok"
    url = f"sqlite:///{db}"
    if db.exists() and done.exists():
        return url
    for leftover in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        leftover.unlink(missing_ok=True)
    _load(url, *_exports(rows, out))
    done.touch()
    return url


def postgres_store(rows: int, admin_url: str, out: Path = OUT) -> str:
    """A kept PostgreSQL database for ``rows``; imported only when it has no usage yet."""
    name = f"burnrate_qbench_{rows}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                            {"n": name}).first():
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    from analytics.store import get_engine

    with get_engine(url).connect() as conn:
        have = conn.execute(text("SELECT COUNT(*) FROM usage")).scalar_one()
    if have == 0:
        _load(url, *_exports(rows, out))
    return url


# --- timing -------------------------------------------------------------------------------


def median_seconds(fn: Callable[[], Any], repeats: int = REPEATS,
                   before: Callable[[], None] | None = None) -> tuple[float, int]:
    """Median wall time of ``repeats`` calls after one warm-up, and how many runs it is of;
    ``before`` runs untimed ahead of every call (e.g. clearing a cache).

    A path whose warm-up alone takes over ``SLOW_S`` is not repeated: the warm-up is its
    figure (a cold one, so if anything pessimistic), which keeps the 1M run bounded.
    """
    times: list[float] = []
    for i in range(repeats + 1):
        if before is not None:
            before()
        start = time.perf_counter()
        fn()
        took = time.perf_counter() - start
        if i:
            times.append(took)
        elif took > SLOW_S:
            return took, 1
    return statistics.median(times), len(times)


def cli_report(url: str, *args: str) -> Callable[[], None]:
    """A call running ``python -m analytics report <args> --db <url>`` in a new process, its
    output to a pipe; it raises with the command's stderr if the report fails."""
    cmd = [sys.executable, "-m", "analytics", "report", *args, "--db", url]

    def run() -> None:
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"`report {' '.join(args)}` failed (exit {done.returncode}):\n"
                               f"{done.stderr[-2000:]}")

    return run


def _paths(engine: Engine, url: str) -> list[tuple[str, Callable[[], Any], float | None,
                                                   Callable[[], None] | None, str]]:
    """(label, call, target, before, note) for every read path."""
    from analytics import (
        explore,
        forecasting,
        insights,
        overview,
        queries,
        reconcile,
        series,
        spend_estimates,
    )
    from analytics.access import SYSTEM

    first, last = queries.data_range(engine, SYSTEM)
    assert first is not None and last is not None, "the bench store is empty"
    last30 = last - timedelta(days=29)
    last90 = last - timedelta(days=89)
    found: list[tuple[str, Callable[[], Any], float | None, Callable[[], None] | None, str]] = []
    for dim in SPEND_DIMS:
        found.append((f"spend by {dim}, all", lambda d=dim: queries.spend(engine, SYSTEM, d),
                      None, None, ""))
        found.append((f"spend by {dim}, 30 d",
                      lambda d=dim: queries.spend(engine, SYSTEM, d, last30, last),
                      None, None, ""))
    found.append(("overview", lambda: overview.overview(engine, SYSTEM, last), None, None, ""))
    for group in explore.GROUPS:
        for grain in explore.GRAINS:
            found.append((f"explore {group}/{grain}, 90 d",
                           lambda g=group, r=grain: explore.explore(engine, SYSTEM, g, r,
                                                                    last90, last),
                           None, None, ""))
    found.append(("spend_with_estimates by api_key, all",
                  lambda: spend_estimates.spend_with_estimates(engine, SYSTEM, "api_key"),
                  None, None, ""))
    found.append(("reconcile, 30 d",
                  lambda: reconcile.reconcile(engine, SYSTEM, last30, last), None, None, ""))
    found.append(("find_insights (90 d default)",
                  lambda: insights.find_insights(engine, SYSTEM), None, None, ""))
    found.append(("daily_spend org", lambda: series.daily_spend(engine, SYSTEM, "org"),
                  None, None, ""))
    found.append(("forecast_scope org",
                  lambda: forecasting.forecast_scope(engine, SYSTEM, "org"),
                  None, forecasting.clear_cache, "cache cleared each run"))
    ids = queries.projects(engine, SYSTEM)["project_id"].tolist()[:FORECAST_PROJECTS]

    def all_projects() -> None:  # as the Forecast page asks: one batch, forecast in parallel
        forecasting.forecast_scopes(engine, SYSTEM, [f"project:{pid}" for pid in ids])

    note = f"{len(ids)} projects in one forecast_scopes call, cache cleared each run"
    if len(ids) < FORECAST_PROJECTS:  # the generated org has fewer: judge the per-50 rate
        note += f"; target scaled to {len(ids)}/{FORECAST_PROJECTS}"
    found.append((f"forecast_scopes x{len(ids)} projects", all_projects,
                  TARGET_FORECASTS_S * len(ids) / FORECAST_PROJECTS, forecasting.clear_cache,
                  note))
    with engine.connect() as conn:  # the CLI's last 30 days: of usage, as a user would pick
        top = conn.execute(text("SELECT MAX(day) FROM usage")).scalar_one()
    assert top is not None, "the bench store has no usage"
    end = date.fromisoformat(str(top)[:10])  # a string on SQLite, a date on PostgreSQL
    start = end - timedelta(days=29)
    span = ("--start", start.isoformat(), "--end", end.isoformat())
    note = "subprocess, interpreter start included"
    reports = [*((("spend", "--by", dim), False) for dim in queries.DIMENSIONS),
               (("spend", "--by", "project"), True),
               *((("reconcile", *by), False) for by in ((), *(("--by", d) for d in
                                                             ("day", "project", "model")))),
               (("reconcile", "--all"), False), (("reconcile", "--all", "--by", "day"), False)]
    for args, dated in reports:
        found.append((" ".join(["CLI report", *args, *(("--start S --end E",) if dated else ())]),
                      cli_report(url, *args, *(span if dated else ())), TARGET_CLI_S, None,
                      f"S..E = {start}..{end}, last 30 d; {note}" if dated else note))
    return found


def bench_store(backend: str, rows: int, url: str) -> list[Timing]:
    from analytics.store import dispose_engine, get_engine

    engine = get_engine(url)
    results: list[Timing] = []
    try:
        results.append(_rollup_build(engine, backend, rows))
        for label, call, target, before, note in _paths(engine, url):
            seconds, runs = median_seconds(call, before=before)
            if runs == 1:
                note = "; ".join(n for n in (note, "1 cold run (over 10 s)") if n)
            t = Timing(backend, rows, label, seconds, target, note)
            print(f"  {backend:10} {rows:>9,} {label:47} {t.seconds:8.3f} s  {t.verdict}",
                  flush=True)
            results.append(t)
    finally:
        dispose_engine(url)
    return results


def _rollup_build(engine: Engine, backend: str, rows: int) -> Timing:
    """Build the spend rollup whole before the reads are timed, as the app's background
    refresh or the ``import`` command would have after an import: its time is a figure of
    its own (a rollup already current is rebuilt, so the figure is always the full build)."""
    from analytics import spend_daily
    from analytics.store import Setting

    with engine.begin() as conn:  # as after a price change: everything is stale
        conn.execute(delete(Setting.__table__).where(Setting.key == spend_daily.PRICES_KEY))
    start = time.perf_counter()
    spend_daily.refresh(engine)
    t = Timing(backend, rows, "spend rollup: full build", time.perf_counter() - start, None,
               "once, before the reads; after a price change or a year's first import")
    print(f"  {backend:10} {rows:>9,} {t.path:47} {t.seconds:8.3f} s", flush=True)
    return t


# --- report -------------------------------------------------------------------------------


def slowest(results: list[Timing], n: int = 3) -> list[Timing]:
    return sorted(results, key=lambda t: t.seconds, reverse=True)[:n]


def markdown(results: list[Timing], context: list[str]) -> str:
    head = ("| backend | rows | path | median s | target | verdict | note |\n"
            "|---|---:|---|---:|---:|---|---|")
    body = [f"| {t.backend} | {t.rows:,} | {t.path} | {t.seconds:.3f} | "
            f"{'' if t.target is None else f'< {t.target:g} s'} | {t.verdict} | {t.note} |"
            for t in results]
    groups = sorted({(t.backend, t.rows) for t in results})
    tail = []
    for backend, rows in groups:
        mine = [t for t in results if t.backend == backend and t.rows == rows]
        top = ", ".join(f"{t.path} {t.seconds:.2f} s" for t in slowest(mine))
        missed = [t.path for t in mine if t.verdict == "MISSED"]
        tail.append(f"- **{backend}, {rows:,} rows**: slowest {top}; targets "
                    + (f"MISSED: {', '.join(missed)}" if missed else "all met"))
    return "\n".join(["# Read-path benchmark", "", *context, "", head, *body, "", *tail, ""])


def each_store(rows_list: list[int], pg_url: str | None, out: Path,
               bench: Callable[[str, int, str], list[Any]]) -> list[Any]:
    """``bench(backend, rows, url)`` on the SQLite store of each size, and on its PostgreSQL
    twin when ``pg_url`` is given (both built once and kept)."""
    results: list[Any] = []
    for rows in rows_list:
        print(f"store with {rows:,} usage rows", flush=True)
        results += bench("sqlite", rows, sqlite_store(rows, out))
        if pg_url:
            results += bench("postgresql", rows, postgres_store(rows, pg_url, out))
    return results


def run(rows_list: list[int], pg_url: str | None, out: Path = OUT) -> list[Timing]:
    """Build (or reuse) each store, time every path, write ``queries.md``."""
    out.mkdir(parents=True, exist_ok=True)
    context = [f"{machine()}; median of {REPEATS} after one warm-up (one cold run for "
               f"paths over {SLOW_S:g} s)."]
    results = each_store(rows_list, pg_url, out, bench_store)
    publish(out, "queries.md", markdown(results, context))
    return results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=parse_rows, default=list(DEFAULT_ROWS),
                        help="comma-separated store sizes in usage rows (default: "
                        "100000,1000000)")
    parser.add_argument("--pg", metavar="ADMIN_URL", default=None,
                        help="also bench PostgreSQL (a kept database per size)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    run(args.rows, args.pg)


if __name__ == "__main__":
    main()
