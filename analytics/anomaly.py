"""Robust spike detection for spend and request series (long format: ``unique_id, ds, y``).

A runaway (a retry loop, a job stuck in a cycle) is a short burst far above what the same
series usually does *at that point of its cycle*. The detector is built so that ordinary
shapes never alarm:

- **Weekly seasonality.** A daily value is compared with the median of the same weekday in
  the previous four weeks, so Monday's return from a quiet weekend is expected, not a spike.
  Hourly values use the same hour on the previous seven days; minute values (too sparse for a
  daily cycle) use the median of the previous hour.
- **Growth.** The baseline looks back only a few cycles, so it follows a steadily growing
  series; and residuals are centred on their own median, so a series that grows faster than
  its baseline adapts does not sit permanently "above normal".
- **Noise.** Residuals are log ratios ``log1p(y) - log1p(baseline)`` (a 3x jump means the
  same on a small key as on a large one), scaled by the series' own median absolute deviation
  (1.4826 x MAD is the standard deviation for Gaussian noise, unmoved by the spikes it looks
  for), with a floor so that a perfectly flat series does not turn tiny wiggles into alarms.
- **Size.** A flagged bucket must also be at least ``min_ratio`` x its baseline: a robust
  z-score alone would flag a 40% bump on a very smooth series.

Callers fill gaps with zeros (``complete_grid``): a bucket with no usage is a zero, not a
missing value, or a burst after a quiet spell would be compared with nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class DetectorSettings:
    """How one bucket width is judged.

    ``season`` is the number of buckets per cycle (7 for days: the same weekday); with a
    season the baseline is the median of the same position in the previous ``lookback``
    cycles, without one it is the median of the previous ``lookback`` buckets. At least
    ``min_history`` earlier values are needed before a bucket can be judged at all.
    """

    season: int | None
    lookback: int
    min_history: int
    threshold: float = 6.0
    min_ratio: float = 3.0
    scale_floor: float = 0.15


DAILY = DetectorSettings(season=7, lookback=4, min_history=2)
HOURLY = DetectorSettings(season=24, lookback=7, min_history=3)
MINUTE = DetectorSettings(season=None, lookback=60, min_history=15)


def settings_for(width_seconds: int) -> DetectorSettings:
    """The detector for buckets of ``width_seconds`` (60 -> minute, 3600 -> hour, else day)."""
    if width_seconds >= 86_400:
        return DAILY
    if width_seconds >= 3_600:
        return HOURLY
    return MINUTE


def complete_grid(frame: pd.DataFrame, freq: str, values: list[str]) -> pd.DataFrame:
    """Every ``unique_id`` on a regular ``ds`` grid from its first to its last bucket, with
    ``values`` columns 0 where the series had no row, sorted by series and time. ``frame``
    holds at most one row per (unique_id, ds).

    Minute buckets make millions of grid rows, so the grid is laid out with array arithmetic
    (each row lands at its series' offset plus its step count) rather than series by series,
    and ``unique_id`` comes back categorical: grouping and sorting millions of rows by a code
    is many times faster than by text.

    >>> f = pd.DataFrame({"unique_id": ["a", "a"], "ds": pd.to_datetime(["2026-01-01",
    ...                   "2026-01-03"]), "y": [1.0, 2.0]})
    >>> complete_grid(f, "D", ["y"])["y"].tolist()
    [1.0, 0.0, 2.0]
    """
    if frame.empty:
        return pd.DataFrame(columns=["unique_id", "ds", *values])
    step = pd.Timedelta(to_offset(freq)).to_timedelta64()
    codes, ids = pd.factorize(frame["unique_id"], sort=True)
    ds = frame["ds"].to_numpy()
    times = pd.Series(ds).groupby(codes, sort=True)
    first, last = times.min().to_numpy(), times.max().to_numpy()
    lengths = (last - first) // step + 1
    starts = np.cumsum(lengths) - lengths  # where each series begins in the grid
    series = np.repeat(np.arange(len(ids)), lengths)
    grid = pd.DataFrame({
        "unique_id": pd.Categorical.from_codes(series, categories=ids),
        "ds": np.repeat(first, lengths) + (np.arange(lengths.sum()) - starts[series]) * step,
    })
    offset = ds - first[codes]
    on_grid = offset % step == np.timedelta64(0)  # a row between two steps has no place
    at = starts[codes[on_grid]] + offset[on_grid] // step
    for column in values:
        filled = np.zeros(len(grid), dtype=frame[column].to_numpy().dtype)
        filled[at] = frame[column].to_numpy()[on_grid]
        grid[column] = filled
    return grid


def baseline(frame: pd.DataFrame, settings: DetectorSettings) -> pd.Series:
    """What each bucket would usually be, from earlier buckets of its own series only."""
    ordered = frame.sort_values(["unique_id", "ds"])
    y = ordered.groupby("unique_id", sort=False)["y"]
    if settings.season:
        lags = pd.concat([y.shift(settings.season * k) for k in range(1, settings.lookback + 1)],
                         axis=1)
        enough = lags.notna().sum(axis=1) >= settings.min_history
        base = lags.median(axis=1, skipna=True).where(enough)
    else:
        previous = y.shift(1).groupby(ordered["unique_id"], sort=False)
        base = previous.rolling(settings.lookback, min_periods=settings.min_history).median()
        base = base.droplevel(0)
    return base.reindex(frame.index)


def score(frame: pd.DataFrame, settings: DetectorSettings) -> pd.DataFrame:
    """``frame`` (unique_id, ds, y on a complete grid) plus baseline, score and anomalous.

    >>> days = pd.date_range("2026-01-01", periods=42, freq="D")
    >>> y = [100.0] * 41 + [900.0]
    >>> out = score(pd.DataFrame({"unique_id": "k", "ds": days, "y": y}), DAILY)
    >>> out["anomalous"].tolist()[-2:]
    [False, True]
    """
    out = frame.copy()
    out["baseline"] = baseline(out, settings)
    residual = np.log1p(out["y"].astype(float)) - np.log1p(out["baseline"].astype(float))
    by_series = residual.groupby(out["unique_id"])
    centre = by_series.transform("median")
    spread = (residual - centre).abs().groupby(out["unique_id"]).transform("median")
    scale = np.maximum(spread * MAD_TO_SIGMA, settings.scale_floor)
    out["score"] = (residual - centre) / scale
    out["anomalous"] = ((out["score"] >= settings.threshold)
                        & (out["y"] >= settings.min_ratio * out["baseline"])
                        & out["baseline"].notna())
    return out


def episodes(flags: pd.DataFrame, sums: Sequence[str] = ()) -> pd.DataFrame:
    """Runs of consecutive flagged buckets per series: unique_id, first, last, buckets, and
    the total of each ``sums`` column over the run (the extra spend of a burst, say), summed
    here for every run at once rather than by slicing the series once per run.

    ``flags`` holds unique_id, ds and a boolean ``anomalous`` on a complete grid, so
    consecutive rows of a series are consecutive buckets.
    """
    ordered = flags.sort_values(["unique_id", "ds"]).reset_index(drop=True)
    flagged = ordered["anomalous"].astype(bool)
    starts = flagged & ~flagged.groupby(ordered["unique_id"]).shift(1, fill_value=False)
    run = starts.cumsum().where(flagged)
    hits = ordered[flagged].assign(run=run[flagged])
    if hits.empty:
        return pd.DataFrame(columns=["unique_id", "first", "last", "buckets", *sums])
    totals = {c: (c, "sum") for c in sums}
    return (hits.groupby("run").agg(unique_id=("unique_id", "first"), first=("ds", "min"),
                                    last=("ds", "max"), buckets=("ds", "size"), **totals)
            .reset_index(drop=True))
