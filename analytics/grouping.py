"""Grouped sums and lists for the estimate reports, computed for all groups at once.

pandas runs a Python function per group (``agg(lambda s: ...)``) at tens of microseconds a
call: at a million usage rows the key and user reports have hundreds of thousands of groups,
and that alone took most of a minute. These helpers give the same answers as the
per-group Python they replace, to the last bit, with a few whole-array operations.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def group_sum(frame: pd.DataFrame, keys: Sequence[str], column: str,
              sort: bool = True) -> pd.Series:
    """Sum ``column`` per group of ``keys``: NaN for a group with no value, else what
    ``Series.sum`` gives for the group's values in row order, to the last bit.

    Estimates are floats, and a sum of list prices often lands on half a nano-dollar, so
    the order of the additions decides how it rounds to money. pandas' grouped sum adds in
    another order than ``Series.sum`` (numpy's pairwise sum); this keeps the latter's
    figures, with one numpy sum over the groups of each size instead of a call per group.
    """
    grouped = frame.groupby(list(keys), sort=sort)
    codes = grouped.ngroup().to_numpy()
    values = frame[column].to_numpy(dtype="float64")
    present = ~np.isnan(values)
    sizes = np.bincount(codes, minlength=grouped.ngroups)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    ordered = np.where(present, values, 0.0)[np.argsort(codes, kind="stable")]
    sums = np.full(grouped.ngroups, np.nan)
    for size in np.unique(sizes):
        which = np.flatnonzero(sizes == size)
        sums[which] = ordered[starts[which][:, None] + np.arange(size)].sum(axis=1)
    sums[np.bincount(codes, weights=present, minlength=grouped.ngroups) == 0] = np.nan
    return pd.Series(sums, index=grouped.size().index, name=column)


def joined_text(frame: pd.DataFrame, keys: Sequence[str], column: str, sep: str,
                sort: bool = True) -> pd.Series:
    """``sep.join(sorted(set(values)))`` of ``column`` per group of ``keys``.

    A group's set is a bit mask over the distinct values (sorted, as ``sorted`` sorts
    text), so only each distinct set is joined as text: a few, however many groups."""
    grouped = frame.groupby(list(keys), sort=sort)
    index = grouped.size().index
    if not grouped.ngroups:
        return pd.Series([], index=index, name=column, dtype=object)
    catalogue = pd.Categorical(frame[column].astype(str))
    codes = catalogue.codes.astype(np.int64)
    masks = np.zeros((grouped.ngroups, codes.max() // 64 + 1), dtype=np.uint64)
    np.bitwise_or.at(masks, (grouped.ngroup().to_numpy(), codes // 64),
                     np.left_shift(np.uint64(1), (codes % 64).astype(np.uint64)))
    sets, inverse = np.unique(masks, axis=0, return_inverse=True)
    words = np.asarray(catalogue.categories, dtype=object)
    texts = np.array([sep.join(words[np.flatnonzero(np.unpackbits(
        row.astype("<u8").view(np.uint8), bitorder="little"))]) for row in sets], dtype=object)
    return pd.Series(texts[inverse.reshape(-1)], index=index, name=column)


def period_labels(days: pd.Series, grain: str) -> pd.Series:
    """Days as ``queries.spend`` writes the key of their period: the ISO day (``day``), the
    Monday that starts its ISO week (``week``), or YYYY-MM (``month``)."""
    values = pd.to_datetime(days).to_numpy().astype("datetime64[D]")
    if grain == "week":  # day 0, 1970-01-01, was a Thursday: weekday 3
        values = values - (values.astype(np.int64) + 3) % 7
    text = np.datetime_as_string(values.astype("datetime64[M]") if grain == "month" else values)
    return pd.Series(text, index=days.index, dtype="str")
