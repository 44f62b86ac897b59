"""Billed cost against usage at list price, per day, project and model family, as plain rows.

The comparison itself, and its sums by day, project or model, without pandas: a CLI report
of a month prints in under half a second (issue #9), a year of a large organisation's rows
(a hundred thousand) in about two, and their sums by day in under one and a half.
``reconcile`` gives the same rows to the page as a frame, kept per data version.

If billed and estimated agree, the usage data and the price book can be trusted for the
questions billed cost cannot answer (cost by key or user, what-if). Where they disagree by
more than a threshold, the row is flagged with the likeliest reason, checked in this order:

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
They come from the daily spend rollup (``spend_daily``), whose model rows keep the usage
priced at the price in effect and at its neighbours, so a year of a million usage rows is
a hundred thousand rollup rows read, not a million usage rows priced three times.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Engine

from analytics import spend_daily
from analytics.access import Principal
from analytics.exports import Rows
from analytics.queries import data_range, display_name, display_names

MISSING_USAGE = "missing usage export"
MISSING_COST = "missing cost export"
UNPRICED = "unpriced model"
PRICE_CHANGE = "price change"
UNEXPLAINED = "unexplained difference"
DEFAULT_DAYS = 30  # the page, and the CLI without dates, open on the last month of data

KEYS = ["day", "provider", "project_id", "model"]
# What ``compared_rows`` gives; ``with_project_names`` inserts ``project`` after project_id.
COLUMNS = [*KEYS, "models", "billed_usd", "estimated_usd", "difference_usd",
           "difference_pct", "flagged", "reason", "unpriced", "tokens"]
NAN = float("nan")


def compared_rows(engine: Engine, principal: Principal, start: date | None = None,
                  end: date | None = None, project: str | Sequence[str] | None = None,
                  threshold_pct: float = 1.0, min_usd: float = 0.01) -> Rows:
    """Billed and estimated dollars per day, provider, project and model family (``COLUMNS``),
    sorted by them; missing figures are NaN. Flagged: see ``judged``."""
    if threshold_pct < 0 or min_usd < 0:
        raise ValueError("The threshold and the minimum difference cannot be negative.")
    out = []
    for (day, provider, pid, family, names, billed, estimated, before, after, tokens,
         reason) in spend_daily.reconcile_rows(engine, principal, start, end, project).rows:
        billed = None if billed is None else float(billed)
        unpriced = reason != ""
        if estimated is None and not unpriced:
            estimated = 0.0  # nothing used is estimated at nothing
        difference, pct, flagged = judged(billed, estimated, unpriced, threshold_pct, min_usd)
        models = names if "," not in names else ", ".join(sorted(names.split(",")))
        key = (day, provider, pid, family)
        tokens = int(tokens or 0)  # a sum of integers is numeric on PostgreSQL
        why = _reason(key, models, billed, before, after, tokens, reason, flagged,
                      threshold_pct)
        out.append((*key, models, _nan(billed), _nan(estimated), difference, pct, flagged, why,
                    unpriced, tokens))
    return Rows(COLUMNS, out)


def judged(billed: float | None, estimated: float | None, unpriced: bool,
           threshold_pct: float, min_usd: float) -> tuple[float, float, bool]:
    """Difference (billed - estimated, to a nano-dollar), difference in % of billed (NaN
    when nothing was billed) and whether it is flagged: more than ``min_usd`` dollars *and*
    more than ``threshold_pct`` percent of the bill (any difference when nothing was
    billed), or usage that could not be priced."""
    billed = 0.0 if billed is None or math.isnan(billed) else billed
    estimated = 0.0 if estimated is None or math.isnan(estimated) else estimated
    difference = round(billed - estimated, 9) + 0.0  # float noise and -0.0 read as cents
    pct = difference / billed * 100 if billed != 0 else NAN
    big = abs(difference) > min_usd and (billed == 0 or abs(pct) > threshold_pct)
    return difference, pct, big or unpriced


def _reason(key: tuple[str, str, str, str], models: str, billed: float | None,
            before: float | None, after: float | None, tokens: int, unpriced_reason: str,
            flagged: bool, threshold_pct: float) -> str:
    """The first matching cause of a flagged row (the module's list); '' when not flagged."""
    if not flagged:
        return ""
    if billed and tokens <= 0:
        return f"{MISSING_USAGE}: billed for {models} but no usage was imported for it"
    if tokens > 0 and billed is None:
        return f"{MISSING_COST}: usage but no billed cost for this day (import the cost export)"
    if unpriced_reason:
        return f"{UNPRICED}: {unpriced_reason}"
    for alternative, words in ((before, "the price before"), (after, "the price after")):
        if (billed is not None and alternative is not None
                and abs(billed - alternative) <= abs(billed) * threshold_pct / 100):
            return (f"{PRICE_CHANGE}: the bill matches {words} the one in effect for "
                    f"{key[3]} on {key[0]} (check the price book's effective dates)")
    return (f"{UNEXPLAINED}: a discount, credits, or a tier or token type the usage export "
            "lacks")


@dataclass
class _Group:
    """One group of ``summed``: the figures present, and what its flagged rows say."""

    billed: list[float] = field(default_factory=list)
    estimated: list[float] = field(default_factory=list)
    unpriced: bool = False
    flagged_rows: int = 0
    reasons: set[str] = field(default_factory=set)


SUMMARY_TAIL = ["billed_usd", "estimated_usd", "difference_usd", "difference_pct", "flagged",
                "flagged_rows", "reasons"]


def summed(named: Rows, by: Sequence[str], threshold_pct: float, min_usd: float) -> Rows:
    """``with_project_names``' rows summed by ``by`` (e.g. ["project"], ["model"]), in the
    order of the keys (``SUMMARY_TAIL`` after them): billed and estimated dollars (exactly
    rounded sums; NaN for a group with none), flagged by the rule a row is (``judged``), with
    the number of flagged rows and the distinct categories of their reasons. Grouping by
    ``project`` (the name) also keeps ``project_id``: names need not be unique.

    Plain Python, one pass: the CLI sums a year's hundred thousand rows without pandas."""
    keys = list(by)
    if "project" in keys and "project_id" not in keys:
        keys.insert(keys.index("project"), "project_id")
    at = {c: i for i, c in enumerate(named.columns)}
    key_at = [at[k] for k in keys]
    billed_at, estimated_at = at["billed_usd"], at["estimated_usd"]
    flagged_at, reason_at, unpriced_at = at["flagged"], at["reason"], at["unpriced"]
    groups: dict[tuple[Any, ...], _Group] = {}
    for row in named.rows:
        key = tuple(row[i] for i in key_at)
        group = groups.get(key) or groups.setdefault(key, _Group())
        if row[billed_at] == row[billed_at]:  # not NaN
            group.billed.append(row[billed_at])
        if row[estimated_at] == row[estimated_at]:
            group.estimated.append(row[estimated_at])
        group.unpriced = group.unpriced or row[unpriced_at]
        if row[flagged_at]:
            group.flagged_rows += 1
            group.reasons.add(row[reason_at].split(":")[0])
    out = []
    for key in sorted(groups):
        group = groups[key]
        billed = math.fsum(group.billed) if group.billed else NAN
        estimated = math.fsum(group.estimated) if group.estimated else NAN
        difference, pct, flagged = judged(billed, estimated, group.unpriced, threshold_pct,
                                          min_usd)
        out.append((*key, billed, estimated, difference, pct, flagged, group.flagged_rows,
                    "; ".join(sorted(group.reasons))))
    return Rows([*keys, *SUMMARY_TAIL], out)


def with_project_names(engine: Engine, rows: Rows) -> Rows:
    """``rows`` with ``project`` (the name given, else the id) after ``project_id``: looked up
    on every call, as renaming a project is no new data."""
    with engine.connect() as conn:
        names = display_names(conn, "project")
    at = list(rows.columns).index("project_id") + 1
    return Rows([*rows.columns[:at], "project", *rows.columns[at:]],
                [(*r[:at], display_name(names, "project", r[at - 1]), *r[at:])
                 for r in rows.rows])


def _nan(value: float | None) -> float:
    return NAN if value is None else value


def recent_range(engine: Engine, principal: Principal, days: int = DEFAULT_DAYS,
                 project: str | Sequence[str] | None = None) -> tuple[date, date] | None:
    """The last ``days`` days of the data the principal sees (of ``project`` when given);
    None when there is none."""
    first, last = data_range(engine, principal, project)
    if first is None or last is None:
        return None
    return max(first, last - timedelta(days=days - 1)), last
