"""Deterministic synthetic daily spend series, shaped like real AI API bills.

Real bills are not smooth: spend dips at weekends, grows as usage grows, jumps when a feature
launches, has days with nothing, and now and then a runaway job costs 5-20x a normal day.
Forecasts are tuned and tested against these shapes (see bench/forecast_backtest.py), so each
is a separate knob of `SpendProfile`.  The same seed always gives the same series.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class SpendProfile:
    """How a synthetic series behaves.

    base_usd: typical weekday spend on the first day.
    weekend_factor: Saturday/Sunday spend relative to a weekday.
    growth_per_month: compounding growth per 30 days (0.05 = +5%).
    noise: standard deviation of the multiplicative (log-normal) day-to-day noise.
    spike_rate: chance per day of a runaway day costing 5-20x the normal level.
    step_rate: expected level changes (launches, cut-backs) per 30 days.
    zero_rate: chance per day of a day with no spend at all.
    """

    base_usd: float
    weekend_factor: float = 0.4
    growth_per_month: float = 0.03
    noise: float = 0.2
    spike_rate: float = 0.01
    step_rate: float = 0.1
    zero_rate: float = 0.0


def generate_daily_spend(profile: SpendProfile, start: date, days: int, seed: int) -> pd.Series:
    """Daily spend in dollars from `start` for `days` days, named ``cost_usd``.

    >>> s = generate_daily_spend(SpendProfile(base_usd=100.0), date(2026, 1, 1), 60, seed=1)
    >>> len(s), bool((s >= 0).all())
    (60, True)
    """
    rng = np.random.default_rng(seed)
    index = pd.date_range(start, periods=days, freq="D", name="day")
    t = np.arange(days)
    level = profile.base_usd * (1 + profile.growth_per_month) ** (t / 30)
    weekly = np.where(index.day_of_week >= 5, profile.weekend_factor, 1.0)
    steps = np.ones(days)
    for day in np.flatnonzero(rng.random(days) < profile.step_rate / 30):
        grow = rng.random() < 0.7  # launches are more common than cut-backs
        steps[day:] *= rng.uniform(1.3, 2.5) if grow else rng.uniform(0.4, 0.8)
    noise = rng.lognormal(-(profile.noise**2) / 2, profile.noise, days)
    spikes = np.where(rng.random(days) < profile.spike_rate, rng.uniform(5, 20, days), 1.0)
    zeros = rng.random(days) < profile.zero_rate
    spend = np.where(zeros, 0.0, level * weekly * steps * noise * spikes)
    return pd.Series(spend.round(2), index=index, name="cost_usd")


def random_profile(rng: np.random.Generator) -> SpendProfile:
    """A profile drawn from the range seen in real organisations ($5 to $5,000 a day)."""
    return SpendProfile(
        base_usd=float(np.exp(rng.uniform(np.log(5), np.log(5000)))),
        weekend_factor=float(rng.uniform(0.2, 1.0)),
        growth_per_month=float(rng.uniform(-0.02, 0.12)),
        noise=float(rng.uniform(0.1, 0.5)),
        spike_rate=float(rng.choice([0.0, 0.005, 0.01, 0.02, 0.04])),
        step_rate=float(rng.uniform(0.0, 0.4)),
        zero_rate=float(rng.choice([0.0, 0.0, 0.02, 0.08])),
    )


def generate_suite(
    n: int, start: date = date(2024, 1, 1), days: int = 760, seed: int = 0
) -> list[tuple[str, pd.Series]]:
    """`n` named series with varied profiles and lengths (`days` / 2 to `days`: some have
    a long past to learn from, some little); the names carry the profile for reports."""
    rng = np.random.default_rng(seed)
    suite = []
    for i in range(n):
        p = random_profile(rng)
        length = int(rng.integers(days // 2, days + 1))
        name = (
            f"s{i:02d} ${p.base_usd:,.0f}/d spikes {p.spike_rate:.1%} "
            f"steps {p.step_rate:.2f}/mo zeros {p.zero_rate:.0%}"
        )
        suite.append((name, generate_daily_spend(p, start, length, seed=seed * 1000 + i)))
    return suite
