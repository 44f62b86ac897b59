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

from dataclasses import dataclass

import numpy as np
import pandas as pd

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
    ``values`` columns 0 where the series had no row.

    >>> f = pd.DataFrame({"unique_id": ["a", "a"], "ds": pd.to_datetime(["2026-01-01",
    ...                   "2026-01-03"]), "y": [1.0, 2.0]})
    >>> complete_grid(f, "D", ["y"])["y"].tolist()
    [1.0, 0.0, 2.0]
    """
    parts = []
    for uid, group in frame.groupby("unique_id", sort=True):
        grid = pd.date_range(group["ds"].min(), group["ds"].max(), freq=freq)
        filled = (group.set_index("ds")[values].reindex(grid, fill_value=0)
                  .rename_axis("ds").reset_index())
        filled.insert(0, "unique_id", uid)
        parts.append(filled)
    if not parts:
        return pd.DataFrame(columns=["unique_id", "ds", *values])
    return pd.concat(parts, ignore_index=True)


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
        base = y.transform(lambda s: s.shift(1).rolling(
            settings.lookback, min_periods=settings.min_history).median())
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


def episodes(flags: pd.DataFrame) -> pd.DataFrame:
    """Runs of consecutive flagged buckets per series: unique_id, first, last, buckets.

    ``flags`` holds unique_id, ds and a boolean ``anomalous`` on a complete grid, so
    consecutive rows of a series are consecutive buckets.
    """
    ordered = flags.sort_values(["unique_id", "ds"]).reset_index(drop=True)
    flagged = ordered["anomalous"].astype(bool)
    starts = flagged & ~flagged.groupby(ordered["unique_id"]).shift(1, fill_value=False)
    run = starts.cumsum().where(flagged)
    hits = ordered[flagged].assign(run=run[flagged])
    if hits.empty:
        return pd.DataFrame(columns=["unique_id", "first", "last", "buckets"])
    return (hits.groupby("run").agg(unique_id=("unique_id", "first"), first=("ds", "min"),
                                    last=("ds", "max"), buckets=("ds", "size"))
            .reset_index(drop=True))
