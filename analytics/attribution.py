"""Billed cost for a dimension the cost export does not break down (API key, user).

OpenAI's default cost export is grouped by project and line item, so billed dollars come
with an empty key. Showing that as one "(none)" row beside per-key *estimates* would count
the money twice. Instead the unattributed billed dollars of each period are split across the
keys in proportion to their list-price estimate (basis ``allocated``): per-key figures then add
up to the bill. Where there is no billed cost at all, the estimate itself is shown (basis
``estimated``).
"""

from __future__ import annotations

import pandas as pd


def attribute(billed: pd.DataFrame, estimated: pd.DataFrame, within: list[str]) -> pd.DataFrame:
    """Merge billed and estimated cost per ``within + ["key"]``.

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
    frame["cost_usd"] = frame["cost_usd"].map(lambda v: float(v) if pd.notna(v) else None)
    keys = [*within, "key"]
    est = estimated[[*keys, "cost_usd"]].rename(columns={"cost_usd": "est"})
    frame = frame.merge(est, on=keys, how="left")
    unattributed = frame[(frame["key"] == "") & frame["cost_usd"].notna()]
    pool = (unattributed.groupby(within)["cost_usd"].sum() if within
            else pd.Series({(): unattributed["cost_usd"].sum()}))
    keyed = frame["cost_usd"].isna() & frame["est"].notna()
    share_base = frame[keyed | ((frame["key"] == "") & frame["est"].notna())]
    totals = (share_base.groupby(within)["est"].sum() if within
              else pd.Series({(): share_base["est"].sum()}))

    def lookup(series: pd.Series, row: pd.Series) -> float:
        idx = tuple(row[c] for c in within) if len(within) > 1 else (
            row[within[0]] if within else ())
        return float(series.get(idx, 0.0) or 0.0)

    costs: list[float] = []
    basis: list[str] = []
    for _, row in frame.iterrows():  # aggregated rows (periods x keys), not raw usage
        money, total = lookup(pool, row), lookup(totals, row)
        splitting = money > 0 and total > 0
        billed_here = pd.notna(row["cost_usd"])
        if splitting and not billed_here and pd.notna(row["est"]):
            costs.append(money * float(row["est"]) / total)
            basis.append("allocated")
        elif splitting and row["key"] == "":
            costs.append(0.0)  # its money was spread over the keys above
            basis.append("allocated")
        elif billed_here:
            costs.append(float(row["cost_usd"]))
            basis.append("billed")
        elif pd.notna(row["est"]):
            costs.append(float(row["est"]))
            basis.append("estimated")
        else:
            costs.append(0.0)
            basis.append("estimated")
    frame["cost_usd"] = costs
    frame["basis"] = basis
    token_cols = [c for c in frame.columns if c.endswith("_tokens") or c == "requests"]
    empty = (frame["key"] == "") & (frame["cost_usd"] == 0) & (
        frame[token_cols].sum(axis=1) == 0 if token_cols else True)
    return frame[~empty].drop(columns=["est"]).reset_index(drop=True)
