"""Spend where billed cost is missing: filled from usage x the price book, and labelled.

Billed cost is the truth for money, but it is not always there: the cost export may not have
arrived yet for the last days, or may not have been imported at all. A spend report then
fills those gaps with an estimate (tokens x the list price in effect on each day) and says
so in a ``basis`` column, instead of showing nothing or, worse, zero.

Gaps are filled per group *and day*: a project whose cost export covers the first three
weeks of a month and whose last week only has usage is ``mixed``. Usage that cannot be
priced (an unknown model) adds nothing to the figure and is named in ``unpriced_models``.

When the cost export lacks a dimension asked for (API key, user), its billed dollars come
with an empty key; they are split across the keys in proportion to their estimates
(``attribution.attribute``, basis ``allocated``), so the groups still add up to the bill.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from analytics.access import Principal
from analytics.attribution import attribute
from analytics.price_store import current_book
from analytics.pricing import PriceBook, estimate_cost
from analytics.queries import TOKEN_COLUMNS, spend, usage_for_pricing

BASES = ("billed", "allocated", "estimated", "mixed", "unpriced")
# Spend dimensions -> the usage column holding them (week and month derive from the day).
_USAGE_COLUMN = {"project": "project_id", "model": "model", "api_key": "api_key_id",
                 "user": "user_id", "provider": "provider"}
_NANO = Decimal("1e-9")


def spend_with_estimates(engine: Engine, principal: Principal, by: str | Sequence[str],
                         start: date | None = None, end: date | None = None,
                         project: str | Sequence[str] | None = None,
                         provider: str | None = None,
                         book: PriceBook | None = None) -> pd.DataFrame:
    """``queries.spend``'s frame with missing billed cost filled from estimates.

    Adds ``basis`` (``billed``, ``estimated``, ``mixed`` or ``unpriced``: usage only, and
    none of it priced, so ``cost_usd`` stays None) and ``unpriced_models`` (comma list of
    raw model names whose usage could not be priced in the filled days, '' when none).
    ``cost_usd`` stays ``Decimal``; estimates are rounded to a nano-dollar.
    """
    dims = [by] if isinstance(by, str) else list(by)
    frame = spend(engine, principal, dims, start, end, project, provider)
    daily_dims = dims if "day" in dims else [*dims, "day"]
    daily = spend(engine, principal, daily_dims, start, end, project, provider)
    gaps = daily["cost_usd"].isna()
    daily["estimate"] = np.nan
    daily["unpriced"] = ""
    if gaps.any():
        estimates = _estimates(engine, principal, daily_dims, start, end, project, provider,
                               book or current_book(engine))
        daily = daily.drop(columns=["estimate", "unpriced"]).merge(
            estimates, on=daily_dims, how="left")
        daily["unpriced"] = daily["unpriced"].fillna("").where(gaps, "")
    split_dim = next((d for d in dims if d in ("api_key", "user")), None)
    daily["allocated"] = False
    if split_dim and gaps.any():
        daily = _split_unattributed(daily, daily_dims, split_dim)
    billed = daily["cost_usd"].notna()
    estimated = ~billed & daily["estimate"].notna()
    daily["amount"] = [
        c if b else _to_decimal(e) if s else Decimal(0)
        for c, e, b, s in zip(daily["cost_usd"], daily["estimate"], billed, estimated,
                              strict=True)]
    daily["billed_days"] = (billed & ~daily["allocated"]).astype(int)
    daily["allocated_days"] = daily["allocated"].astype(int)
    daily["estimated_days"] = estimated.astype(int)
    grouped = daily.groupby(dims, sort=False).agg(
        amount=("amount", lambda s: sum(s, Decimal(0))),
        billed_days=("billed_days", "sum"), allocated_days=("allocated_days", "sum"),
        estimated_days=("estimated_days", "sum"), unpriced_models=("unpriced", _join_models))
    out = frame.merge(grouped.reset_index(), on=dims, how="left")
    if split_dim:  # keys that only exist through the split (no billed row of their own)
        out = grouped.reset_index().merge(frame.drop(columns=["cost_usd"]), on=dims, how="left")
        out["cost_usd"] = None
        for c in TOKEN_COLUMNS:
            out[c] = out[c].fillna(0).astype("int64")
    kinds = (out[["billed_days", "allocated_days", "estimated_days"]] > 0)
    out["basis"] = np.select(
        [kinds.sum(axis=1) > 1, kinds["allocated_days"], kinds["estimated_days"],
         kinds["billed_days"]],
        ["mixed", "allocated", "estimated", "billed"], "unpriced")
    out["cost_usd"] = [a if basis != "unpriced" else None
                       for a, basis in zip(out["amount"], out["basis"], strict=True)]
    return out.drop(columns=["amount", "billed_days", "allocated_days", "estimated_days"])


def _split_unattributed(daily: pd.DataFrame, daily_dims: list[str],
                        split_dim: str) -> pd.DataFrame:
    """Spread each day's billed dollars of the empty key over the keys' estimates."""
    within = [d for d in daily_dims if d != split_dim]
    est = daily.loc[daily["estimate"].notna(), [*daily_dims, "estimate"]].rename(
        columns={"estimate": "cost_usd", split_dim: "key"})
    framed = daily.rename(columns={split_dim: "key"})
    split = attribute(framed.drop(columns=["estimate"]), est, within)
    split = split.merge(est.rename(columns={"cost_usd": "estimate"}), on=[*within, "key"],
                        how="left").rename(columns={"key": split_dim})
    allocated = split["basis"] == "allocated"
    split["allocated"] = allocated
    split["cost_usd"] = [
        _to_decimal(c) if a else (None if b == "estimated" else _to_decimal(c))
        for c, a, b in zip(split["cost_usd"], allocated, split["basis"], strict=True)]
    return split.drop(columns=["basis"])


def _estimates(engine: Engine, principal: Principal, dims: list[str], start: date | None,
               end: date | None, project: str | Sequence[str] | None, provider: str | None,
               book: PriceBook) -> pd.DataFrame:
    """Estimated dollars and unpriced model names per group of ``dims`` (which has day)."""
    extra = [_USAGE_COLUMN[d] for d in dims if d in ("api_key", "user")]
    usage = usage_for_pricing(engine, principal, start, end, project, extra=extra)
    if provider:
        usage = usage[usage["provider"] == provider]
    priced = estimate_cost(usage, book)
    keys = pd.DataFrame({d: _dimension_values(priced, d) for d in dims})
    keys["estimate"] = priced["estimated_cost_usd"].to_numpy()
    keys["unpriced"] = priced["model"].where(~priced["priced"], "").to_numpy()
    return keys.groupby(dims, as_index=False, sort=False).agg(
        estimate=("estimate", lambda s: s.sum(min_count=1)), unpriced=("unpriced", _join_models))


def _dimension_values(usage: pd.DataFrame, dim: str) -> list[Any]:
    """Group keys as ``queries.spend`` writes them (ISO day, Monday of the week, YYYY-MM)."""
    if dim in _USAGE_COLUMN:
        return usage[_USAGE_COLUMN[dim]].astype(str).tolist()
    days = usage["day"].tolist()
    if dim == "day":
        return [d.isoformat() for d in days]
    if dim == "week":
        return [(d - timedelta(days=d.weekday())).isoformat() for d in days]
    return [d.strftime("%Y-%m") for d in days]


def _join_models(values: pd.Series) -> str:
    names = {m for text in values for m in str(text).split(",") if m}
    return ",".join(sorted(names))


def _to_decimal(value: float) -> Decimal:
    return Decimal(repr(float(value))).quantize(_NANO)


def unpriced_usage(engine: Engine, principal: Principal, start: date | None = None,
                   end: date | None = None, book: PriceBook | None = None) -> pd.DataFrame:
    """Usage the price book cannot price, one row per provider and raw model: family,
    reason (of its newest day), tokens, requests, first and last day. Empty when all is
    priced. This is the list of models a person must add prices for."""
    usage = usage_for_pricing(engine, principal, start, end)
    priced = estimate_cost(usage, book or current_book(engine))
    missing = priced[~priced["priced"]].sort_values("day")
    columns = ["provider", "model", "family", "reason", "input_tokens", "output_tokens",
               "requests", "first_day", "last_day"]
    if missing.empty:
        return pd.DataFrame(columns=columns)
    out = missing.groupby(["provider", "model", "family"], as_index=False).agg(
        reason=("unpriced_reason", "last"), input_tokens=("input_tokens", "sum"),
        output_tokens=("output_tokens", "sum"), requests=("requests", "sum"),
        first_day=("day", "min"), last_day=("day", "max"))
    return out[columns].sort_values("input_tokens", ascending=False, ignore_index=True)
