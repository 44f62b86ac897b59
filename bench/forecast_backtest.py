"""Backtest every forecast method on generated series (and any CSVs of real daily spend).

    .venv/bin/python -m bench.forecast_backtest [spend.csv ...] [--series 24] [--jobs 2]

Each CSV has columns day,cost_usd.  For each series and method the forecast made on day 10
of each of the last 12 monthly periods is compared with the period's outcome; the table gives
the mean absolute percentage error (MAPE) over all those forecasts and the share of outcomes
inside the 80% band.  The target for "shipped": MAPE <= 0.8x the run rate's, coverage 75-90%.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor

import pandas as pd

from analytics.forecast import backtest
from analytics.series_gen import generate_suite


def _run_one(job: tuple[str, pd.Series, str]) -> pd.DataFrame:
    name, daily, method = job
    rows = backtest(daily, method, kind="month", forecast_day=10, n_periods=12).periods
    return rows.assign(series=name, method=method)


def _read_csv(path: str) -> pd.Series:
    frame = pd.read_csv(path, parse_dates=["day"])
    return frame.groupby("day")["cost_usd"].sum()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", nargs="*", help="CSV files of daily spend (day,cost_usd)")
    parser.add_argument("--series", type=int, default=24, help="generated series (>= 20)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    # "prophet_log" is a member of "shipped"; list it with --methods to see it alone.
    parser.add_argument("--methods", default="runrate,prophet,weekly,shipped")
    parser.add_argument("--rows", help="also write every backtested forecast to this CSV")
    args = parser.parse_args()

    series = generate_suite(args.series) + [(p, _read_csv(p)) for p in args.csv]
    jobs = [(n, s, m) for n, s in series for m in args.methods.split(",")]
    started = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        rows = pd.concat(pool.map(_run_one, jobs))
    if args.rows:
        rows.to_csv(args.rows, index=False)
    rows["inside"] = rows["inside_band"].astype(float)
    table = rows.groupby("method", sort=False).agg(
        mape=("abs_pct_error", "mean"),
        median_ape=("abs_pct_error", "median"),
        coverage=("inside", "mean"),
        forecasts=("actual", "size"),
    )
    table["mape_vs_runrate"] = table["mape"] / table.loc["runrate", "mape"]
    print(
        f"{len(series)} series x 12 monthly periods, forecast on day 10 "
        f"({time.perf_counter() - started:.0f} s)\n"
    )
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
