"""Billed cost against the estimate from usage x the price book, by day, project and model.

If the two agree, the usage data and the price book can be trusted for the questions billed
cost cannot answer (cost by key or user, what-if). Where they disagree by more than a
threshold, the row is flagged with the likeliest reason, checked in this order:

1. ``missing usage export``: dollars were billed but no usage was imported for that model
   (OpenAI exports embeddings usage in a file of its own, for instance);
2. ``missing cost export``: usage exists but no billed cost for that day;
3. ``unpriced model``: the price book cannot price the usage (unknown model, fine-tune);
4. ``price change``: the bill matches the price just before (or after) the one the book
   has in effect that day, i.e. an effective date is wrong or a change is missing;
5. ``unexplained difference``: none of the above (a discount, credits, a tier not exported).

Rows are keyed by model *family*, because a cost export may name a model differently from
the usage export (display name, snapshot); ``models`` lists the raw names behind a row.
Figures are float dollars: this is a comparison with estimates, not a statement of money.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from analytics.access import Principal
from analytics.grouping import group_sum, joined_text, period_labels
from analytics.memo import per_data_version, replayed
from analytics.models import model_family
from analytics.price_store import current_book
from analytics.pricing import PriceBook, estimate_cost
from analytics.queries import data_range, projects, spend, usage_for_pricing

MISSING_USAGE = "missing usage export"
MISSING_COST = "missing cost export"
UNPRICED = "unpriced model"
PRICE_CHANGE = "price change"
UNEXPLAINED = "unexplained difference"
DEFAULT_DAYS = 30  # the page opens on the last month of data

KEYS = ["day", "provider", "project_id", "model"]
_COLUMNS = [*KEYS[:3], "project", "model", "models", "billed_usd", "estimated_usd",
            "difference_usd", "difference_pct", "flagged", "reason", "unpriced", "tokens"]
_PRICE_KEY = ["provider", "family", "service_tier"]
_SHIFTED = ["input_per_1m", "cached_input_per_1m", "cache_write_per_1m", "output_per_1m",
            "batch_discount", "unit", "source", "source_date"]


@dataclass(frozen=True)
class Reconciliation:
    """``rows``: day, provider, project_id, project, model (family), models, billed_usd,
    estimated_usd, difference_usd (billed - estimated), difference_pct (of billed),
    flagged, reason ('' when not flagged)."""

    rows: pd.DataFrame
    threshold_pct: float
    min_usd: float

    @property
    def flagged(self) -> pd.DataFrame:
        return self.rows[self.rows["flagged"]].reset_index(drop=True)

    def summary(self, by: Sequence[str]) -> pd.DataFrame:
        """Sums by ``by`` (e.g. ["project"], ["model"]), flagged by the same rule, with the
        distinct reasons of the flagged rows inside each group (``reasons``). Grouping by
        ``project`` (the name) also keeps ``project_id``."""
        keys = list(by)
        if "project" in keys and "project_id" not in keys:  # names need not be unique
            keys.insert(keys.index("project"), "project_id")
        rows = self.rows
        grouped = rows.groupby(keys, as_index=False, sort=True).agg(
            unpriced=("unpriced", "any"), flagged_rows=("flagged", "sum"))
        for at, column in enumerate(("billed_usd", "estimated_usd"), start=len(keys)):
            grouped.insert(at, column, group_sum(rows, keys, column).to_numpy())
        flagged = rows[rows["flagged"]]
        reasons = joined_text(flagged.assign(category=flagged["reason"].str.split(":").str[0]),
                              keys, "category", "; ")
        grouped = grouped.merge(reasons.rename("reasons").reset_index(), on=keys, how="left")
        grouped["reasons"] = grouped["reasons"].fillna("")
        out = _with_differences(grouped, self.threshold_pct, self.min_usd)
        return out[[*keys, "billed_usd", "estimated_usd", "difference_usd", "difference_pct",
                    "flagged", "flagged_rows", "reasons"]]


@replayed
def reconcile(engine: Engine, principal: Principal, start: date | None = None,
              end: date | None = None, project: str | Sequence[str] | None = None,
              threshold_pct: float = 1.0, min_usd: float = 0.01,
              book: PriceBook | None = None, *, last_days: int | None = None
              ) -> Reconciliation:
    """Compare billed and estimated cost per day, provider, project and model family.

    A row is flagged when billed and estimate differ by more than ``threshold_pct`` percent
    of the billed figure *and* by more than ``min_usd`` dollars (so that sub-cent rounding
    on tiny rows is not noise on the page), or when its usage cannot be priced.

    The rows are kept per data version and price book (``memo``): the page is drawn again
    on every click, and a month of a large store takes most of a second to reconcile.
    ``last_days`` instead of ``start`` and ``end`` asks for the last that many days of data
    (``recent_range``), found for the data at hand, so the rows a refresh prepares after an
    import cover the new days rather than the range the old data ended on.
    """
    if threshold_pct < 0 or min_usd < 0:
        raise ValueError("The threshold and the minimum difference cannot be negative.")
    if last_days is not None and (start is not None or end is not None):
        raise ValueError("Ask for a start and end day, or for the last days, not both.")
    asked = project if project is None or isinstance(project, str) else tuple(project)
    rows = _reconciled(engine, principal, start, end, asked, threshold_pct, min_usd,
                       book or current_book(engine), last_days)
    # Names are looked up on every call: renaming a project is no new data version.
    seen = projects(engine, principal)
    names = {pid: name for pid, name in zip(seen["project_id"], seen["name"], strict=True)
             if isinstance(name, str) and name}
    label = {pid: names.get(pid) or pid or "(no project)" for pid in rows["project_id"].unique()}
    rows.insert(_COLUMNS.index("project"), "project", rows["project_id"].map(label))
    return Reconciliation(rows, threshold_pct, min_usd)


@per_data_version
def _reconciled(engine: Engine, principal: Principal, start: date | None, end: date | None,
                project: str | tuple[str, ...] | None, threshold_pct: float, min_usd: float,
                book: PriceBook, last_days: int | None) -> pd.DataFrame:
    """The rows without project names (``reconcile`` adds them)."""
    if last_days is not None:
        start, end = recent_range(engine, principal, last_days) or (None, None)
    both = spend(engine, principal, ["day", "provider", "project", "model"], start, end, project)
    both = both.rename(columns={"project": "project_id"}).drop(columns=["project_name"])
    kept = [c for c in _COLUMNS if c != "project"]
    if both.empty:
        return pd.DataFrame(columns=kept).astype(
            {"flagged": bool, "unpriced": bool, "billed_usd": float, "estimated_usd": float,
             "difference_usd": float, "difference_pct": float, "tokens": "int64"})
    usage = usage_for_pricing(engine, principal, start, end, project)
    rows = _rows(both, _estimated(usage, book))
    rows = _with_differences(rows, threshold_pct, min_usd)
    rows["reason"] = _reasons(rows)
    rows = _explain_price_changes(rows, usage, book, threshold_pct)
    return rows[kept].reset_index(drop=True)


def recent_range(engine: Engine, principal: Principal, days: int = DEFAULT_DAYS
                 ) -> tuple[date, date] | None:
    """The last ``days`` days of the data the principal sees; None when there is none."""
    first, last = data_range(engine, principal)
    if first is None or last is None:
        return None
    return max(first, last - timedelta(days=days - 1)), last


def _estimated(usage: pd.DataFrame, book: PriceBook, column: str = "estimated_usd"
               ) -> pd.DataFrame:
    """Estimated dollars per day, provider, project and family; ``unpriced`` when any
    usage of the group could not be priced, with the first reason."""
    priced = estimate_cost(usage, book)
    priced["day"] = period_labels(priced["day"], "day")
    priced["model"] = priced["family"]
    reasons = priced["unpriced_reason"]
    grouped = priced.assign(reason=reasons.where(reasons != "")).groupby(KEYS)
    return pd.DataFrame({
        column: group_sum(priced, KEYS, "estimated_cost_usd"),
        "unpriced": ~grouped["priced"].all(),
        "unpriced_reason": grouped["reason"].first().fillna(""),  # the first in row order
    }).reset_index()


def _rows(both: pd.DataFrame, estimated: pd.DataFrame) -> pd.DataFrame:
    """Billed and token sums per family joined with the estimates."""
    pairs = both[["model", "provider"]].drop_duplicates()
    pairs["family"] = [model_family(m, p)
                       for m, p in zip(pairs["model"], pairs["provider"], strict=True)]
    frame = both.assign(
        raw_model=both["model"],
        model=both[["model", "provider"]].merge(pairs, how="left")["family"].to_numpy(),
        billed_usd=both["cost_usd"].astype("float64"),
        tokens=both["input_tokens"] + both["output_tokens"])
    grouped = joined_text(frame, KEYS, "raw_model", ", ").rename("models").to_frame()
    grouped["billed_usd"] = group_sum(frame, KEYS, "billed_usd")
    grouped["tokens"] = frame.groupby(KEYS)["tokens"].sum()
    grouped = grouped.reset_index()
    merged = grouped.merge(estimated, on=KEYS, how="left")
    merged["unpriced"] = merged["unpriced"].fillna(False).astype(bool)
    merged["unpriced_reason"] = merged["unpriced_reason"].fillna("")
    no_usage = merged["estimated_usd"].isna() & ~merged["unpriced"]
    merged.loc[no_usage, "estimated_usd"] = 0.0  # nothing used is estimated at nothing
    return merged


def _with_differences(frame: pd.DataFrame, threshold_pct: float, min_usd: float
                      ) -> pd.DataFrame:
    billed = frame["billed_usd"].fillna(0.0)
    estimated = frame["estimated_usd"].fillna(0.0)
    difference = (billed - estimated).round(9) + 0.0  # float noise and -0.0 read as cents
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.where(billed != 0, difference / billed.where(billed != 0, 1.0) * 100, np.nan)
    big = (difference.abs() > min_usd) & ((billed == 0) | (np.abs(pct) > threshold_pct))
    return frame.assign(difference_usd=difference, difference_pct=pct,
                        flagged=(big | frame["unpriced"]).to_numpy())


def _reasons(rows: pd.DataFrame) -> pd.Series:
    """The first matching cause for each flagged row; '' for the others."""
    billed = rows["billed_usd"].fillna(0.0) != 0
    has_usage = rows["tokens"] > 0
    conditions = [
        rows["flagged"] & billed & ~has_usage,
        rows["flagged"] & has_usage & rows["billed_usd"].isna(),
        rows["flagged"] & rows["unpriced"],
        rows["flagged"],
    ]
    choices = [
        MISSING_USAGE + ": billed for " + rows["models"] + " but no usage was imported for it",
        MISSING_COST + ": usage but no billed cost for this day (import the cost export)",
        UNPRICED + ": " + rows["unpriced_reason"],
        UNEXPLAINED + ": a discount, credits, or a tier or token type the usage export lacks",
    ]
    return pd.Series(np.select(conditions, choices, ""), index=rows.index, dtype=object)


def _explain_price_changes(rows: pd.DataFrame, usage: pd.DataFrame, book: PriceBook,
                           threshold_pct: float) -> pd.DataFrame:
    """Turn "unexplained" into "price change" where the bill matches the neighbouring price."""
    open_rows = rows["reason"].str.startswith(UNEXPLAINED)
    if not open_rows.any():
        return rows
    for step, words in ((1, "the price before"), (-1, "the price after")):
        shifted = _shifted_book(book, step)
        if shifted is None:
            continue
        alternative = _estimated(usage, shifted, "alternative_usd")[[*KEYS, "alternative_usd"]]
        alt = rows[KEYS].merge(alternative, on=KEYS, how="left")["alternative_usd"]
        billed = rows["billed_usd"]
        matches = open_rows & ((billed - alt).abs() <= billed.abs() * threshold_pct / 100)
        rows.loc[matches, "reason"] = (
            PRICE_CHANGE + ": the bill matches " + words + " the one in effect for "
            + rows.loc[matches, "model"] + " on " + rows.loc[matches, "day"]
            + " (check the price book's effective dates)")
        open_rows = open_rows & ~matches
    return rows


def _shifted_book(book: PriceBook, step: int) -> PriceBook | None:
    """A book that prices each period at the previous (``step=1``) or next (``-1``) price
    of the same provider, family and tier; None when no family has more than one row."""
    rows = book.to_frame()
    shifted = rows.groupby(_PRICE_KEY)[_SHIFTED].shift(step)
    rows[_SHIFTED] = shifted
    rows = rows[shifted["input_per_1m"].notna()]
    return PriceBook.from_frame(rows, "shifted prices") if len(rows) else None
