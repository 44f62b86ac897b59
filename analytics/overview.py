"""The overview's figures: this billing period against the last, who and what spent it.

The period follows the organisation's billing anchor day (calendar months by default). When
"today" has no data yet (exports arrive late), the period shown is the one holding the newest
data, so a manager never opens an empty dashboard.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import pandas as pd
from sqlalchemy import Engine

from analytics.access import Principal
from analytics.budgets import Period, period_containing, previous_period
from analytics.queries import data_range, spend


@dataclass(frozen=True)
class Overview:
    period: Period
    previous: Period
    as_of: date
    spend: Decimal
    previous_spend: Decimal
    previous_same_point: Decimal
    top_projects: pd.DataFrame
    top_models: pd.DataFrame
    daily_by_project: pd.DataFrame
    by_provider: pd.DataFrame  # provider, cost_usd (float) this period, largest first

    @property
    def change_pct(self) -> float | None:
        """Change against the previous period up to the same day, in percent."""
        if self.previous_same_point == 0:
            return None
        return float((self.spend - self.previous_same_point) / self.previous_same_point * 100)


def overview(engine: Engine, principal: Principal, today: date, anchor_day: int = 1,
             top: int = 5, provider: str | None = None) -> Overview | None:
    """This period's and last period's spend, top projects and models, the daily chart data
    and spend by provider; ``provider`` narrows every figure but the provider split.

    None when the principal can see no data at all.
    """
    first, last = data_range(engine, principal)
    if last is None:
        return None
    as_of = min(today, last)
    period = period_containing(as_of, "month", anchor_day)
    previous = previous_period(period, "month", anchor_day)
    elapsed = (as_of - period.start).days
    same_point = min(previous.start + timedelta(days=elapsed), previous.end)
    projects = spend(engine, principal, "project", period.start, period.end, provider=provider)
    models = spend(engine, principal, "model", period.start, period.end, provider=provider)
    daily = spend(engine, principal, ["day", "project"], period.start, period.end,
                  provider=provider)
    providers = spend(engine, principal, "provider", period.start, period.end)
    return Overview(
        period=period, previous=previous, as_of=as_of,
        spend=billed(engine, principal, period.start, period.end, provider),
        previous_spend=billed(engine, principal, previous.start, previous.end, provider),
        previous_same_point=billed(engine, principal, previous.start, same_point, provider),
        top_projects=_top(projects, "project", top),
        top_models=_top(models, "model", top),
        daily_by_project=daily,
        by_provider=_top(providers, "provider", len(providers)),
    )


def billed(engine: Engine, principal: Principal, start: date, end: date,
           provider: str | None = None) -> Decimal:
    """Billed dollars in a range, of one provider or all (summed in SQL by provider)."""
    frame = spend(engine, principal, "provider", start, end, provider=provider)
    return sum((v for v in frame["cost_usd"] if v is not None), Decimal(0))


def _top(frame: pd.DataFrame, key: str, n: int) -> pd.DataFrame:
    if frame.empty:
        return frame
    billed = frame[frame["cost_usd"].notna()].copy()
    billed["cost_usd"] = billed["cost_usd"].map(float)
    return billed.sort_values("cost_usd", ascending=False).head(n).reset_index(drop=True)
