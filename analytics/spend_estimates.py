"""Spend where billed cost is missing: filled from usage x the price book, and labelled.

Billed cost is the truth for money, but it is not always there: the cost export may not have
arrived yet for the last days, or may not have been imported at all. A spend report then
fills those gaps with an estimate (tokens x the list price in effect on each day) and says
so in a ``basis`` column, instead of showing nothing or, worse, zero.

Gaps are judged per group, *day, project and provider* whatever the report is grouped by:
a project whose cost export covers the first three weeks of a month and whose last week only
has usage is ``mixed``, and a day on which one project's cost is missing has that project's
usage estimated in a report by day or by model too, so every grouping adds up to the same
total. An org-level bill (a cost export not grouped by project) covers every project's usage
of its day: nothing is estimated there. Usage that cannot be priced (an unknown model) adds
nothing to the figure and is named in ``unpriced_models``.

When the cost export lacks a dimension asked for (API key, user), its billed dollars come
with an empty key; they are split across the keys of the same project and day in proportion
to their estimates (``attribution.attribute``, basis ``allocated``; an org-level bill across
every key of its day), so the groups still add up to the bill, and a key's figure does not
depend on which projects the report was filtered to. (One exception: an org-level bill
belongs to no project, so a report filtered to projects, or a user limited to some, does not
see it, and the usage of its days is estimated instead.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import ColumnElement, Engine, and_, func, or_, select, tuple_

from analytics import spend_daily
from analytics.access import Principal
from analytics.attribution import attribute
from analytics.grouping import group_sum, joined_text, period_labels
from analytics.memo import per_data_version, replayed
from analytics.price_store import current_book
from analytics.pricing import PriceBook, estimate_cost, first_priced_day
from analytics.queries import (
    PRICING_KEYS,
    TOKEN_COLUMNS,
    name_column,
    org_billed_days,
    rows_frame,
    spend,
    usage_for_pricing,
)
from analytics.store import Usage

BASES = ("billed", "allocated", "estimated", "mixed", "unpriced")
# Spend dimensions -> the usage column holding them (week and month derive from the day).
_USAGE_COLUMN = {"project": "project_id", "model": "model", "api_key": "api_key_id",
                 "user": "user_id", "provider": "provider"}
_NANO = Decimal("1e-9")
_NAME = "unpriced_model"  # a raw model name of usage that could not be priced


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
    if book is None:
        kept = spend_daily.report_rows(engine, principal, dims, start, end, project, provider)
        if kept is not None:
            frame = pd.DataFrame(list(kept.rows), columns=list(kept.columns))
            for c in TOKEN_COLUMNS:
                frame[c] = frame[c].astype("int64")
            return frame
    fine = [*dims, *(d for d in ("day", "project", "provider") if d not in dims)]
    daily = spend(engine, principal, fine, start, end, project, provider)
    frame = daily.copy() if fine == dims else _coarser(daily, dims, fine)
    org_days = org_billed_days(engine, principal, start, end, project, provider)
    daily, named = settle(daily, org_days, dims, fine, lambda: _estimates(
        engine, principal, fine, start, end, project, provider, book or current_book(engine)))
    return _grouped(daily, named, frame, dims)


Estimator = Callable[[], tuple[pd.DataFrame, pd.DataFrame]]


def settle(daily: pd.DataFrame, org_days: set[tuple[str, str]], dims: list[str],
           fine: list[str], estimate: Estimator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each fine group's dollars, as a report grouped by ``dims`` counts them.

    ``daily``: ``spend(fine)``'s frame; ``estimate()``: the estimates per fine group and the
    raw names of the models left unpriced (``_estimates``), asked for only when some day
    needs them. Returns ``daily`` with ``amount`` (Decimal: billed, allocated or estimated;
    0 where none) and 0/1 ``billed_days``, ``allocated_days``, ``estimated_days``; and the
    unpriced names of the groups that were gaps. The split of a bill is per project and
    day (per day for an org-level bill), so the groups of a day settle alike whatever else
    is in view: ``spend_daily`` keeps them per day.
    """
    covered = pd.Series(list(zip(daily["provider"], daily["day"], strict=True)),
                        dtype=object).isin(org_days).to_numpy(dtype=bool)
    unbilled = daily["cost_usd"].isna().to_numpy(dtype=bool)
    gaps = unbilled & ~covered
    daily["gap"] = gaps
    daily["covered"] = covered
    # The group a bill without this dimension is shared in: its project, or all projects
    # of a day billed at org level.
    daily["pool"] = np.where(covered, "", daily["project"].to_numpy(dtype=object))
    daily["estimate"] = np.nan
    daily["allocated"] = False
    unpriced = pd.DataFrame(columns=[*fine, _NAME])
    # A bill that lacks a dimension asked for is shared out by estimates: the key or user
    # (cost exports give neither), or the project of a day billed at org level.
    split_dim = next((d for d in dims if d in ("api_key", "user")), None)
    org_split = _splits(dims, covered) and not split_dim
    if gaps.any() or (split_dim or org_split) and (unbilled & covered).any():
        estimates, unpriced = estimate()
        daily = daily.drop(columns=["estimate"]).merge(estimates, on=fine, how="left")
        if split_dim:
            within = [d for d in fine if d != split_dim]
            daily = _split_unattributed(daily, split_dim, within,
                                        [d for d in within if d != "project"] + ["pool"])
        elif org_split:
            on_org_days = daily["covered"].to_numpy(dtype=bool)
            within = [d for d in fine if d != "project"]
            daily = pd.concat([daily[~on_org_days], _split_unattributed(
                daily[on_org_days], "project", within, within)], ignore_index=True)
        # Usage an org-level bill covers is in that bill: never estimated on top of it.
        daily.loc[daily["covered"].to_numpy(dtype=bool), "estimate"] = np.nan
    billed = daily["cost_usd"].notna().to_numpy()
    estimated = ~billed & daily["estimate"].notna().to_numpy()
    amounts = daily["cost_usd"].to_numpy(dtype=object, copy=True)
    amounts[estimated] = [_to_decimal(e) for e in daily["estimate"].to_numpy()[estimated]]
    amounts[~billed & ~estimated] = Decimal(0)
    allocated = daily["allocated"].to_numpy(dtype=bool)
    daily = daily.assign(amount=amounts, billed_days=(billed & ~allocated).astype(int),
                         allocated_days=allocated.astype(int),
                         estimated_days=estimated.astype(int))
    named = unpriced.merge(daily.loc[daily["gap"].to_numpy(dtype=bool), fine], on=fine)
    return daily, named


_DAY_KINDS = ["billed_days", "allocated_days", "estimated_days"]


def _splits(dims: list[str], covered: np.ndarray) -> bool:
    """Whether bills are shared out: by key or user, or an org-level bill by project."""
    return any(d in ("api_key", "user") for d in dims) or (
        "project" in dims and bool(covered.any()))


def _grouped(daily: pd.DataFrame, named: pd.DataFrame, frame: pd.DataFrame,
             dims: list[str]) -> pd.DataFrame:
    """The settled fine groups summed to ``dims``, with their basis and unpriced models;
    names and token counts from ``frame`` (``spend(dims)``)."""
    by_group = daily[_DAY_KINDS].groupby([daily[d] for d in dims], sort=False)
    grouped = by_group.sum()
    grouped.insert(0, "amount", _decimal_sums(by_group.ngroup().to_numpy(),
                                              daily["amount"].to_numpy(dtype=object)))
    grouped = grouped.reset_index()
    grouped["unpriced_models"] = _unpriced_models(grouped[dims], named[[*dims, _NAME]])
    if _splits(dims, daily["covered"].to_numpy(dtype=bool)):  # groups only the split made
        # (no billed row of their own), and none for a bill it shared out entirely
        out = grouped.merge(frame.drop(columns=["cost_usd"]), on=dims, how="left")
        for c in TOKEN_COLUMNS:
            out[c] = out[c].fillna(0).astype("int64")
    else:
        out = frame.merge(grouped, on=dims, how="left")
    out["basis"] = [spend_daily.basis(*kinds) for kinds in zip(
        *(out[k].to_numpy() for k in _DAY_KINDS), strict=True)]
    out["cost_usd"] = np.where(out["basis"] != "unpriced", out["amount"].to_numpy(dtype=object),
                               None)
    out = out.sort_values(dims, kind="stable", ignore_index=True)  # as spend() orders them
    return out.drop(columns=["amount", *_DAY_KINDS])


def settled_rows(dim: str, raw: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
    """``spend_daily`` rows of ``dim`` (tuples in ``spend_daily.ROLLUP_COLUMNS`` order) from
    its raw rows (``spend_daily.RAW_COLUMNS``): each day settled by ``settle`` as a report
    over the whole store settles it. Project rows are settled as a report by day settles
    them (no org-level bill shared by project): the rollup's reader sends a report that
    would share one back to ``spend_with_estimates``."""
    if not raw:
        return []
    frame = pd.DataFrame([tuple(r) for r in raw], columns=spend_daily.RAW_COLUMNS)
    if dim == "project":  # given the model level's rows: summed here, not read again
        frame = _project_level(frame).drop(columns=["value"])
    group = [] if dim == "project" else [dim]
    fine = [*group, "day", "project", "provider"]
    frame = frame.rename(columns={"project_id": "project", "value": dim})
    frame["day"] = [d.isoformat() if isinstance(d, date) else str(d) for d in frame["day"]]
    is_usage = frame["usage"].to_numpy(dtype=bool)
    usage, cost = frame[is_usage], frame[~is_usage]
    daily = usage[[*fine, *TOKEN_COLUMNS]].merge(
        cost[[*fine, "billed"]].rename(columns={"billed": "cost_usd"}), on=fine, how="outer")
    for c in TOKEN_COLUMNS:
        daily[c] = daily[c].fillna(0).astype("int64")
    daily["cost_usd"] = daily["cost_usd"].astype(object).where(daily["cost_usd"].notna(), None)
    org = cost[cost["org_billed"].to_numpy() > 0]
    org_days = set(zip(org["provider"], org["day"], strict=True))

    def estimate() -> tuple[pd.DataFrame, pd.DataFrame]:
        priced = usage[usage["estimate"].notna()]
        names = usage.loc[usage["unpriced"].notna(), [*fine, "unpriced"]]
        names = names.assign(unpriced=names["unpriced"].str.split(",")).explode("unpriced")
        return (priced[[*fine, "estimate"]],
                names.rename(columns={"unpriced": _NAME}).drop_duplicates())

    settled, named = settle(daily, org_days, group or ["day"], fine, estimate)
    unpriced = np.full(len(settled), "", dtype=object)
    if len(named):
        lists = joined_text(named, fine, _NAME, ",").rename("unpriced").reset_index()
        found = settled[fine].merge(lists, on=fine, how="left")["unpriced"].to_numpy(object)
        unpriced = np.where([isinstance(u, str) for u in found], found, "")
    days = {text: date.fromisoformat(text) for text in settled["day"].unique()}
    n = len(settled)
    kept = spend_daily.RECONCILE_COLUMNS
    if dim == "model":  # the raw usage figures reconciliation reads, per group as settled
        extra = settled[fine].merge(usage[[*fine, *kept]], on=fine, how="left")
        reconciled = {c: _nullable(extra[c].to_numpy(dtype=object)) for c in kept}
    else:
        reconciled = {c: [None] * n for c in kept}
    columns = {
        "dim": [dim] * n, "day": [days[d] for d in settled["day"].to_numpy(dtype=object)],
        "provider": settled["provider"], "project_id": settled["project"],
        "value": settled[dim] if group else [""] * n, "amount": settled["amount"],
        "billed": settled["billed_days"], "allocated": settled["allocated_days"],
        "estimated": settled["estimated_days"],
        "org_billed": settled["covered"].to_numpy(dtype=bool).astype(int),
        **{c: settled[c] for c in TOKEN_COLUMNS}, "unpriced": unpriced, **reconciled,
    }
    return list(zip(*(_python_values(columns[c]) for c in spend_daily.ROLLUP_COLUMNS),
                    strict=True))


def _project_level(frame: pd.DataFrame) -> pd.DataFrame:
    """Raw model-level rows summed per day, provider and project (each side, usage and
    cost, kept apart): billed cost exactly, estimates NaN where none was priced."""
    keys = ["usage", "day", "provider", "project_id"]
    grouped = frame.groupby(keys, sort=False)
    out = grouped[list(TOKEN_COLUMNS)].sum()
    out["org_billed"] = grouped["org_billed"].max()
    out["estimate"] = grouped["estimate"].sum(min_count=1)
    named = frame[frame["unpriced"].notna()]
    out["unpriced"] = named.groupby(keys, sort=False)["unpriced"].agg(",".join)
    billed = frame["billed"].notna().to_numpy()
    codes = grouped.ngroup().to_numpy()
    sums = np.full(len(out), None, dtype=object)
    sums[np.unique(codes[billed])] = _decimal_sums(codes[billed],
                                                   frame["billed"].to_numpy(dtype=object)[billed])
    out["billed"] = sums
    extra = dict.fromkeys(spend_daily.RECONCILE_COLUMNS[1:])  # model rows only
    return out.reset_index().assign(value="", **extra)[spend_daily.RAW_COLUMNS]


def _nullable(values: np.ndarray) -> list[Any]:
    """NaN and missing as None: PostgreSQL would keep a NaN, and sums over it."""
    return [None if v is None or (isinstance(v, float) and v != v) else v for v in values]


def _python_values(values: Any) -> list[Any]:
    """A column as plain Python values (ints, not numpy's), for the driver."""
    array = values.to_numpy(dtype=object) if hasattr(values, "to_numpy") else values
    return [v.item() if hasattr(v, "item") else v for v in array]


def _coarser(daily: pd.DataFrame, dims: list[str], fine: list[str]) -> pd.DataFrame:
    """``spend(dims)`` from ``spend(fine)``: the same groups, sums and names, without reading
    the usage table a second time."""
    grouped = daily.groupby(dims, sort=True)
    out = grouped[list(TOKEN_COLUMNS)].sum()
    names = {name_column(d, dims): name_column(d, fine)
             for d in dims if d in ("project", "api_key")}
    for coarse, detailed in names.items():
        out[coarse] = grouped[detailed].first()
    has_cost = daily["cost_usd"].notna().to_numpy()
    codes = grouped.ngroup().to_numpy()
    cost = np.full(len(out), None, dtype=object)
    billed_groups = np.unique(codes[has_cost])
    cost[billed_groups] = _decimal_sums(codes[has_cost],
                                        daily["cost_usd"].to_numpy(dtype=object)[has_cost])
    out.insert(0, "cost_usd", cost)
    return out.reset_index()[[*dims, "cost_usd", *TOKEN_COLUMNS, *names]]


def _decimal_sums(codes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Exact sums of ``Decimal`` values per group code, in the order of the codes present
    (ascending). Decimal addition is exact here, so the order of the terms does not matter."""
    if not len(codes):
        return np.array([], dtype=object)
    order = np.argsort(codes, kind="stable")
    ordered = codes[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    return np.add.reduceat(values[order].astype(object), starts)


def _unpriced_models(groups: pd.DataFrame, names: pd.DataFrame) -> pd.Series:
    """For each row of ``groups``, the raw model names (``_NAME``; a name may itself be a
    comma list) ``names`` holds for it: sorted, distinct, comma-joined, '' for none."""
    dims = list(groups.columns)
    split = names.assign(**{_NAME: names[_NAME].astype(str).str.split(",")}).explode(_NAME)
    split = split[split[_NAME].notna() & (split[_NAME] != "")]
    if split.empty:
        return pd.Series("", index=groups.index, dtype="str")
    lists = joined_text(split, dims, _NAME, ",").rename("_names").reset_index()
    found = groups.merge(lists, on=dims, how="left")["_names"]
    return pd.Series(found.fillna("").to_numpy(dtype=object), index=groups.index, dtype="str")


def _split_unattributed(daily: pd.DataFrame, split_dim: str, within: list[str],
                        pool: list[str]) -> pd.DataFrame:
    """Spread the billed dollars of the empty ``split_dim`` (an API key or user the cost
    export does not give; the empty project of an org-level bill) over the estimates of the
    others in the same ``pool`` group: per project and day for keys (all projects of a day
    billed at org level), per day for projects."""
    est = daily.loc[daily["estimate"].notna(), [*within, split_dim, "estimate"]].rename(
        columns={"estimate": "cost_usd", split_dim: "key"})
    framed = daily.rename(columns={split_dim: "key"})
    split = attribute(framed.drop(columns=["estimate"]), est, within, pool)
    split = split.merge(est.rename(columns={"cost_usd": "estimate"}), on=[*within, "key"],
                        how="left").rename(columns={"key": split_dim})
    split["allocated"] = split["basis"] == "allocated"
    kept = (split["basis"] != "estimated").to_numpy()
    cost = np.full(len(split), None, dtype=object)
    cost[kept] = [_to_decimal(c) for c in split["cost_usd"].to_numpy()[kept]]
    split["cost_usd"] = cost
    return split.drop(columns=["basis"])


def _estimates(engine: Engine, principal: Principal, dims: list[str], start: date | None,
               end: date | None, project: str | Sequence[str] | None, provider: str | None,
               book: PriceBook) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Estimated dollars per group of ``dims`` (which has day); and the raw model names of
    the usage that could not be priced, one row per group and name."""
    extra = [_USAGE_COLUMN[d] for d in dims if d in ("api_key", "user")]
    usage = usage_for_pricing(engine, principal, start, end, project, extra=extra)
    if provider:
        usage = usage[usage["provider"] == provider]
    priced = estimate_cost(usage, book)
    keys = pd.DataFrame({d: _dimension_values(priced, d) for d in dims})
    estimates = group_sum(keys.assign(estimate=priced["estimated_cost_usd"].to_numpy()), dims,
                          "estimate", sort=False).reset_index()
    unpriced = ~priced["priced"].to_numpy(dtype=bool)
    names = keys[unpriced].assign(**{_NAME: priced["model"].to_numpy()[unpriced]})
    return estimates, names.drop_duplicates()


def _dimension_values(usage: pd.DataFrame, dim: str) -> pd.Series:
    """Group keys as ``queries.spend`` writes them (ISO day, Monday of the week, YYYY-MM)."""
    if dim in _USAGE_COLUMN:
        return usage[_USAGE_COLUMN[dim]].astype(str).reset_index(drop=True)
    return period_labels(usage["day"].reset_index(drop=True), dim)


def _to_decimal(value: float) -> Decimal:
    return Decimal(repr(float(value))).quantize(_NANO)


@replayed
def unpriced_usage(engine: Engine, principal: Principal, start: date | None = None,
                   end: date | None = None, book: PriceBook | None = None) -> pd.DataFrame:
    """Usage the price book cannot price, one row per provider and raw model: family,
    reason (of its newest day; the last in alphabetical order when that day has several),
    tokens, requests, first and last day. Empty when all is priced. This is the list of
    models a person must add prices for.

    It covers all of time by default, so the answer is kept per data version and book
    (``memo``); only usage that may be unpriced is read and costed (``_maybe_unpriced``).
    """
    return _unpriced_usage(engine, principal, start, end, book or current_book(engine))


@per_data_version
def _unpriced_usage(engine: Engine, principal: Principal, start: date | None,
                    end: date | None, book: PriceBook) -> pd.DataFrame:
    usage = usage_for_pricing(engine, principal, start, end,
                              where=[_maybe_unpriced(engine, book)])
    priced = estimate_cost(usage, book)
    missing = priced[~priced["priced"]].sort_values(["day", "unpriced_reason"], kind="stable")
    columns = ["provider", "model", "family", "reason", "input_tokens", "output_tokens",
               "requests", "first_day", "last_day"]
    if missing.empty:
        return pd.DataFrame(columns=columns)
    out = missing.groupby(["provider", "model", "family"], as_index=False).agg(
        reason=("unpriced_reason", "last"), input_tokens=("input_tokens", "sum"),
        output_tokens=("output_tokens", "sum"), requests=("requests", "sum"),
        first_day=("day", "min"), last_day=("day", "max"))
    return out[columns].sort_values("input_tokens", ascending=False, ignore_index=True)


def _maybe_unpriced(engine: Engine, book: PriceBook) -> ColumnElement[bool]:
    """Usage rows whose pricing group may be unpriced: a provider, model and tier the book
    has no price for, or none yet on the row's day, and groups holding a row with odd token
    counts. The condition is on group keys only, so a group is read whole or not at all,
    and every group left out is priced for sure. One pass over ``usage`` for its models
    (DISTINCT: few of them), and a lookup of the odd rows (usually none)."""
    usage = Usage.__table__
    combo = [usage.c.provider, usage.c.model, usage.c.service_tier]
    group = [usage.c[k] for k in PRICING_KEYS]
    odd = select(*group).distinct().where(or_(
        usage.c.cached_input_tokens > usage.c.input_tokens, usage.c.input_tokens < 0,
        usage.c.cached_input_tokens < 0, usage.c.output_tokens < 0))
    with engine.connect() as conn:
        models = rows_frame(conn.execute(select(*combo).distinct()).all(),
                            ["provider", "model", "service_tier"])
        first_day = conn.execute(select(func.min(usage.c.day))).scalar()
        # Fetched first, then named as values: PostgreSQL plans a row-valued IN (subquery)
        # under OR as a subplan rerun per row, minutes at 100k rows.
        odd_groups = [tuple(r) for r in conn.execute(odd).all()]
    since = first_priced_day(models, book)
    never = models[since.isna()]
    later = models[since > pd.Timestamp(first_day)] if first_day is not None else never[:0]
    return or_(
        tuple_(*combo).in_([tuple(r) for r in never.itertuples(index=False)]),
        *[and_(*(c == v for c, v in zip(combo, row[:3], strict=True)),
               usage.c.day < row[3].date())
          for row in later.assign(since=since[later.index]).itertuples(index=False)],
        *([tuple_(*group).in_(odd_groups)] if odd_groups else []))
