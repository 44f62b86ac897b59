"""The whole-array group helpers give what the per-group Python they replace gave."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from analytics.grouping import group_sum, joined_text, period_labels


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 20_000
    values = rng.lognormal(0, 4, n) * rng.choice([1.0, 1e-7, 1e5], n)
    values[rng.random(n) < 0.1] = np.nan
    out = pd.DataFrame({"a": rng.integers(0, 700, n).astype(str),
                        "b": rng.choice(["x", "y"], n), "v": values,
                        "m": rng.choice(["gpt-4o", "", "a,b", "Z", "ü", "o3"], n)})
    out.loc[out["a"] == "7", "v"] = np.nan  # a group with nothing to sum
    return out


@pytest.mark.parametrize("sort", [True, False])
def test_group_sum_is_series_sum_to_the_last_bit(frame, sort):
    """Groups of every size from 1 to 60 rows, NaNs among them, one group all NaN."""
    expected = frame.groupby(["a", "b"], sort=sort)["v"].agg(lambda s: s.sum(min_count=1))
    got = group_sum(frame, ["a", "b"], "v", sort=sort)
    assert got.index.equals(expected.index)
    assert np.array_equal(got.to_numpy(), expected.to_numpy(), equal_nan=True)
    assert np.isnan(got.loc[("7", "x")])


def test_pandas_own_grouped_sum_would_round_differently(frame):
    """Why group_sum exists: the grouped sum adds in another order, and estimates that sit
    on half a nano-dollar then round the other way."""
    builtin = frame.groupby(["a", "b"])["v"].sum(min_count=1)
    assert not np.array_equal(builtin.to_numpy(), group_sum(frame, ["a", "b"], "v").to_numpy(),
                              equal_nan=True)


@pytest.mark.parametrize("sort", [True, False])
def test_joined_text_is_the_sorted_set_per_group(frame, sort):
    expected = frame.groupby("a", sort=sort)["m"].agg(lambda s: ", ".join(sorted(set(s))))
    got = joined_text(frame, ["a"], "m", ", ", sort=sort)
    assert got.index.equals(expected.index)
    assert got.tolist() == expected.tolist()


def test_joined_text_with_more_than_64_distinct_values():
    names = [f"model-{i:03d}" for i in range(150)]
    frame = pd.DataFrame({"g": [i % 3 for i in range(300)], "m": names * 2})
    got = joined_text(frame, ["g"], "m", ",")
    assert got.tolist() == [",".join(sorted({n for i, n in enumerate(names * 2) if i % 3 == g}))
                            for g in range(3)]


def test_empty_frames_give_empty_results():
    empty = pd.DataFrame({"a": pd.Series([], dtype=str), "v": pd.Series([], dtype=float)})
    assert group_sum(empty, ["a"], "v").empty
    assert joined_text(empty.assign(m=""), ["a"], "m", ",").empty


def test_period_labels_match_python_dates():
    days = pd.Series([date(2024, 2, 26) + timedelta(days=i) for i in range(400)])
    assert period_labels(days, "day").tolist() == [d.isoformat() for d in days]
    assert period_labels(days, "week").tolist() == [
        (d - timedelta(days=d.weekday())).isoformat() for d in days]
    assert period_labels(days, "month").tolist() == [d.strftime("%Y-%m") for d in days]
