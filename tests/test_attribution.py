"""Splitting unattributed billed dollars over keys, by hand-computed examples."""

from __future__ import annotations

import pandas as pd

from analytics.attribution import attribute


def test_usage_without_a_key_keeps_its_share_of_the_bill():
    billed = pd.DataFrame({"day": ["d1"] * 3, "key": ["", "k1", "k2"],
                           "cost_usd": [100, None, None], "requests": [2, 5, 5]})
    est = pd.DataFrame({"day": ["d1"] * 3, "key": ["", "k1", "k2"],
                        "cost_usd": [10.0, 30.0, 10.0]})
    out = attribute(billed, est, ["day"]).set_index("key")
    assert out["cost_usd"].to_dict() == {"": 20.0, "k1": 60.0, "k2": 20.0}
    assert set(out["basis"]) == {"allocated"}


def test_periods_are_split_separately_and_billed_keys_stay_billed():
    billed = pd.DataFrame({"day": ["d1", "d1", "d2", "d2"], "key": ["", "k1", "k1", "k2"],
                           "cost_usd": [50, None, 7, None], "requests": [0, 1, 1, 1]})
    est = pd.DataFrame({"day": ["d1", "d2", "d2"], "key": ["k1", "k1", "k2"],
                        "cost_usd": [5.0, 6.0, 3.0]})
    out = attribute(billed, est, ["day"])
    got = {(r.day, r.key): (r.cost_usd, r.basis) for r in out.itertuples()}
    assert got == {("d1", "k1"): (50.0, "allocated"), ("d2", "k1"): (7.0, "billed"),
                   ("d2", "k2"): (3.0, "estimated")}
