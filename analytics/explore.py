"""The Explore page's data: spend and tokens by a dimension over time, at a chosen grain.

Billed cost comes from cost exports. API keys and users are not in OpenAI's default cost
export, so for those groups (and wherever billed cost is missing) the figure is *estimated*
from usage and the price book, and the result says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from pandas.core.groupby import SeriesGroupBy
from sqlalchemy import Engine

from analytics.access import Principal
from analytics.attribution import attribute
from analytics.grouping import period_labels
from analytics.memo import per_data_version, replayed
from analytics.models import model_family
from analytics.price_store import current_book
from analytics.pricing import PriceBook, estimate_cost
from analytics.queries import TOKEN_COLUMNS, spend, usage_for_pricing

GROUPS = {"project": "Project", "model": "Model", "model_family": "Model family",
          "api_key": "API key", "user": "User", "provider": "Provider"}
GRAINS = ("day", "week", "month")
_USAGE_COLUMN = {"project": "project_id", "model": "model", "api_key": "api_key_id",
                 "user": "user_id", "provider": "provider"}


@dataclass(frozen=True)
class ExploreResult:
    series: pd.DataFrame  # period, key, label, cost_usd (float), total_tokens, requests, basis
    table: pd.DataFrame  # one row per group: key, label, cost_usd, tokens, requests, basis
    note: str


@per_data_version
def _estimated(engine: Engine, principal: Principal, group: str, grain: str, start: date,
               end: date, provider: str | None, book: PriceBook) -> pd.DataFrame:
    """List-price cost by period and group, from usage (for groups the cost export lacks),
    priced with the store's price book (Owner prices included), as every other estimate is.

    Kept per data version and book (``memo``): by key or user it costs seconds at a million
    usage rows, and the page is drawn again on every click (measure, stacking)."""
    column = _USAGE_COLUMN["model" if group == "model_family" else group]
    usage = usage_for_pricing(engine, principal, start, end, extra=[column])
    if provider:
        usage = usage[usage["provider"] == provider]
    if usage.empty:
        return pd.DataFrame(columns=["period", "key", "cost_usd"])
    priced = estimate_cost(usage, book)
    priced["period"] = period_labels(priced["day"], grain)
    priced["key"] = priced[column]
    return (priced.groupby(["period", "key"], as_index=False)["estimated_cost_usd"]
            .sum(min_count=1).rename(columns={"estimated_cost_usd": "cost_usd"}))


_NOTES = {
    "allocated": "The cost export has no breakdown by this dimension: billed spend is split in "
                 "proportion to each group's list-price usage cost ('allocated').",
    "estimated": "No billed cost covers some of these groups: their figures are list-price "
                 "estimates from usage ('estimated').",
    "mixed": "Some figures are billed, others allocated or estimated from usage (see Basis).",
}


def _basis(grouped: SeriesGroupBy) -> np.ndarray:
    """One word for each group's figures: billed, allocated, estimated, or mixed."""
    return np.where(grouped.nunique() == 1, grouped.first(), "mixed")


@replayed
def explore(engine: Engine, principal: Principal, group: str, grain: str, start: date,
            end: date, provider: str | None = None) -> ExploreResult:
    """Spend and tokens by ``group`` per ``grain`` period between ``start`` and ``end``,
    of one ``provider`` or all."""
    if group not in GROUPS:
        raise ValueError(f"Unknown grouping '{group}'.")
    if grain not in GRAINS:
        raise ValueError(f"Unknown grain '{grain}'; choose day, week or month.")
    dim = "model" if group == "model_family" else group
    frame = spend(engine, principal, [grain, dim], start, end, provider=provider)
    frame = frame.rename(columns={grain: "period", dim: "key"})
    label_col = "name" if "name" in frame else f"{dim}_name" if f"{dim}_name" in frame else "key"
    frame["label"] = frame[label_col] if label_col in frame else frame["key"]
    if frame["cost_usd"].notna().all():
        frame["cost_usd"] = frame["cost_usd"].astype("float64")
        frame["basis"] = "billed"
    else:
        est = _estimated(engine, principal, group, grain, start, end, provider,
                         current_book(engine))
        frame = attribute(frame, est, ["period"])
    if group == "model_family":
        families = {m: model_family(m) for m in frame["key"].unique()}
        frame["key"] = frame["key"].map(families)
        frame["label"] = frame["key"]
    frame["total_tokens"] = frame["input_tokens"] + frame["output_tokens"]
    by_period = frame.groupby(["period", "key", "label"])
    series = by_period[["cost_usd", "total_tokens", "requests"]].sum()
    series["basis"] = _basis(by_period["basis"])
    by_key = frame.groupby(["key", "label"])
    table = by_key[["cost_usd", *TOKEN_COLUMNS]].sum()
    table["basis"] = _basis(by_key["basis"])
    table = table.reset_index().sort_values("cost_usd", ascending=False, ignore_index=True)
    kinds = set(table["basis"])
    note = _NOTES.get(kinds.pop() if len(kinds) == 1 else "mixed", "") if kinds else ""
    return ExploreResult(series.reset_index().sort_values(["period", "label"], ignore_index=True),
                         table, note)
