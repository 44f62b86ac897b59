"""Billed cost against the estimate from usage x the price book, for the Reconcile page.

``reconcile_rows`` compares (and says why rows differ); this gives its rows as a frame, kept
per data version and prices so the page, drawn again on every click, does not compare
again, and sums them by project, model or day (``Reconciliation.summary``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import cached_property

import pandas as pd
from sqlalchemy import Engine

from analytics import spend_daily
from analytics.access import Principal
from analytics.exports import Rows
from analytics.memo import per_data_version, replayed
from analytics.queries import rows_frame
from analytics.reconcile_rows import compared_rows, recent_range, summed, with_project_names

_TYPES = {"flagged": bool, "unpriced": bool, "billed_usd": float, "estimated_usd": float,
          "difference_usd": float, "difference_pct": float, "tokens": "int64",
          "flagged_rows": "int64"}


@dataclass(frozen=True)
class Reconciliation:
    """``named``: ``compared_rows`` with project names (``with_project_names``); ``rows``,
    the same as a frame: day, provider, project_id, project, model (family), models,
    billed_usd, estimated_usd, difference_usd (billed - estimated), difference_pct (of
    billed), flagged, reason ('' when not flagged), unpriced, tokens."""

    named: Rows
    threshold_pct: float
    min_usd: float

    @cached_property
    def rows(self) -> pd.DataFrame:
        return _frame(self.named)

    @property
    def flagged(self) -> pd.DataFrame:
        return self.rows[self.rows["flagged"]].reset_index(drop=True)

    def summary(self, by: Sequence[str]) -> pd.DataFrame:
        """``reconcile_rows.summed`` as a frame: sums by ``by`` (e.g. ["project"])."""
        return _frame(summed(self.named, by, self.threshold_pct, self.min_usd))


def _frame(table: Rows) -> pd.DataFrame:
    """Compared or summed rows as a frame, typed as the page shows them (even when empty)."""
    return rows_frame(table.rows, table.columns).astype(
        {c: t for c, t in _TYPES.items() if c in table.columns})


@replayed
def reconcile(engine: Engine, principal: Principal, start: date | None = None,
              end: date | None = None, project: str | Sequence[str] | None = None,
              threshold_pct: float = 1.0, min_usd: float = 0.01, *,
              last_days: int | None = None) -> Reconciliation:
    """``reconcile_rows.compared_rows`` as a frame, with project names.

    A row is flagged when billed and estimate differ by more than ``threshold_pct`` percent
    of the billed figure *and* by more than ``min_usd`` dollars (so that sub-cent rounding
    on tiny rows is not noise on the page), or when its usage cannot be priced.

    ``last_days`` instead of ``start`` and ``end`` asks for the last that many days of data
    (``recent_range``), found for the data at hand, so the rows a refresh prepares after an
    import cover the new days rather than the range the old data ended on.
    """
    if last_days is not None and (start is not None or end is not None):
        raise ValueError("Ask for a start and end day, or for the last days, not both.")
    asked = project if project is None or isinstance(project, str) else tuple(project)
    with engine.connect() as conn:
        prices = spend_daily.price_version(conn)
    rows = _reconciled(engine, principal, start, end, asked, threshold_pct, min_usd, prices,
                       last_days)
    # Names are looked up on every call: renaming a project is no new data version.
    return Reconciliation(with_project_names(engine, rows), threshold_pct, min_usd)


@per_data_version
def _reconciled(engine: Engine, principal: Principal, start: date | None, end: date | None,
                project: str | tuple[str, ...] | None, threshold_pct: float, min_usd: float,
                prices: str, last_days: int | None) -> Rows:
    """The compared rows, kept; ``prices`` (``spend_daily.price_version``) is an argument so
    that kept rows give way to new prices."""
    if last_days is not None:
        start, end = recent_range(engine, principal, last_days) or (None, None)
    return compared_rows(engine, principal, start, end, project, threshold_pct, min_usd)
