"""Daily series per scope and the data version."""

from __future__ import annotations

from datetime import date

import pytest

from analytics.access import SYSTEM
from analytics.demo import load_demo
from analytics.series import bump_data_version, daily_spend, data_version, scope_projects


def test_scopes_and_version(engine):
    before = data_version(engine)
    load_demo(engine, days=40, end=date(2026, 10, 31))
    after = data_version(engine)
    assert after != before
    org = daily_spend(engine, SYSTEM, "org")
    assert len(org) == 40 and org.index[0] == date(2026, 9, 22)
    prod = daily_spend(engine, SYSTEM, "env:Production")
    # Production and Marketing are both labelled Production in the demo
    assert sorted(scope_projects(engine, SYSTEM, "env:Production")) == [
        "proj_demoMarketing000005", "proj_demoProduction000003"]
    dev = daily_spend(engine, SYSTEM, "project:proj_demoDevelopment00001")
    assert 0 < prod.sum() < org.sum() and 0 < dev.sum() < org.sum()
    with pytest.raises(ValueError):
        scope_projects(engine, SYSTEM, "team:x")
    with engine.begin() as conn:
        bump_data_version(conn)
    assert data_version(engine) != after
