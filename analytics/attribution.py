"""Billed cost for a dimension the cost export does not break down (API key, user).

OpenAI's default cost export is grouped by project and line item, so billed dollars come
with an empty key. Showing that as one "(none)" row beside per-key *estimates* would count
the money twice. Instead the unattributed billed dollars of each period are split across the
keys in proportion to their list-price estimate (basis ``allocated``): per-key figures then add
up to the bill. Where there is no billed cost at all, the estimate itself is shown (basis
``estimated``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def attribute(billed: pd.DataFrame, estimated: pd.DataFrame, within: list[str],
              pool: list[str] | None = None) -> pd.DataFrame:
    """Merge billed and estimated cost per ``within + ["key"]``; split the empty key's billed
    dollars per ``pool`` groups (default ``within``; coarser when one bill covers several of
    its groups, as an org-level bill covers every project of its day).

    ``billed``: the query frame (``key``, ``cost_usd`` Decimal or None, token columns, ...).
    ``estimated``: ``within + ["key", "cost_usd"]`` with float list-price estimates.
    Returns ``billed`` with float ``cost_usd`` and a ``basis`` column (billed, allocated,
    estimated). Rows for the empty key that only carried unattributed money are dropped.

    >>> b = pd.DataFrame({"key": ["", "k1", "k2"], "cost_usd": [90, None, None],
    ...                   "requests": [0, 5, 5]})
    >>> e = pd.DataFrame({"key": ["k1", "k2"], "cost_usd": [20.0, 10.0]})
    >>> attribute(b, e, [])[["key", "cost_usd", "basis"]].values.tolist()
    [['k1', 60.0, 'allocated'], ['k2', 30.0, 'allocated']]
    """
    frame = billed.copy()
    frame["cost_usd"] = frame["cost_usd"].astype("float64")  # Decimal or None -> float or NaN
    keys = [*within, "key"]
    est = estimated[[*keys, "cost_usd"]].rename(columns={"cost_usd": "est"})
    frame = frame.merge(est, on=keys, how="left")
    billed_here = frame["cost_usd"].notna()
    has_est = frame["est"].notna()
    empty_key = frame["key"] == ""
    # Per `pool` group: the unattributed billed money, and the estimates it is split over.
    pool = within if pool is None else pool
    groups = [frame[c] for c in pool] if pool else [pd.Series(0, index=frame.index)]
    pool = frame["cost_usd"].where(empty_key & billed_here, 0.0).groupby(groups).transform("sum")
    share_base = ~billed_here & has_est | empty_key & has_est
    total = frame["est"].where(share_base, 0.0).groupby(groups).transform("sum")
    splitting = (pool > 0) & (total > 0)
    allocated = splitting & has_est & (~billed_here | empty_key)
    spread = splitting & empty_key & ~has_est  # its money went to the keys above
    costs = np.select(
        [allocated, spread, billed_here, has_est],
        [pool * frame["est"] / total.where(total > 0, 1.0), 0.0, frame["cost_usd"], frame["est"]],
        0.0)
    basis = np.select([allocated | spread, billed_here, has_est],
                      ["allocated", "billed", "estimated"], "estimated")
    frame["cost_usd"] = np.asarray(costs, dtype="float64")
    frame["basis"] = basis
    token_cols = [c for c in frame.columns if c.endswith("_tokens") or c == "requests"]
    empty = (frame["key"] == "") & (frame["cost_usd"] == 0) & (
        frame[token_cols].sum(axis=1) == 0 if token_cols else True)
    return frame[~empty].drop(columns=["est"]).reset_index(drop=True)
