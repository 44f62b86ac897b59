"""The spend rollup answers a report exactly as pricing the usage itself does, and is never
stale: imports, deletions, purges and price changes are seen by the next report.

The reference is ``spend_with_estimates`` given the price book explicitly, which reads the
usage and prices it in pandas (the path every report took before the rollup, issue #9).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pandas as pd
import pytest
from sqlalchemy import func, select

from analytics import spend_daily
from analytics.access import SYSTEM, Principal
from analytics.price_store import add_price, current_book
from analytics.retention import delete_import, purge_older_than
from analytics.spend_estimates import spend_with_estimates
from analytics.store import SpendDaily, SpendDailyDirty
from tests.test_import_errors import (
    COST_HEADER_V1,
    DAY,
    USAGE_HEADER,
    cost_row,
    csv_text,
    usage_row,
)

OWNER = Principal("olivia", "owner")
DAY2, DAY3 = DAY + timedelta(days=1), DAY + timedelta(days=2)
GROUPINGS = ["project", "model", "api_key", "user", "provider", "day", "week", "month",
             ["project", "model"], ["day", "project"], ["api_key", "week"]]


def _import(engine, usage_rows: list, cost_rows: list) -> list[int]:
    from analytics.ingest import import_sources

    files = {"usage.csv": csv_text(USAGE_HEADER, usage_rows)} if usage_rows else {}
    if cost_rows:
        files["cost.csv"] = csv_text(COST_HEADER_V1, cost_rows)
    results = import_sources(engine, [(n, t.encode()) for n, t in files.items()])
    assert all(r.ok for r in results), [r.error for r in results]
    return [r.import_id for r in results]


@pytest.fixture
def org(engine):
    """Three days, two projects, keys sharing project bills, a day whose project b bill is
    missing (a gap), a model no book prices, a batch bucket, and a bucket with more cached
    than input tokens (unpriced: its project's bill stays with the empty key)."""
    _import(engine, [
        usage_row(DAY, project="proj_a", key="key_a1", input_tokens="1000.0"),
        usage_row(DAY, project="proj_a", key="key_a2", input_tokens="9000.0", user="user_b"),
        usage_row(DAY, project="proj_b", key="key_b1", input_tokens="50000.0"),
        usage_row(DAY2, project="proj_a", key="key_a1"),
        usage_row(DAY2, project="proj_b", key="key_b1", model="gpt-4o-2024-08-06"),
        usage_row(DAY2, project="proj_b", key="key_b1", input_tokens="300000.0", batch="True"),
        usage_row(DAY2, project="proj_b", key="key_b2", model="mystery-model-1"),
        usage_row(DAY3, project="proj_a", key="key_a2", user="user_b", cached="2000.0"),
    ], [cost_row(DAY, "4.00", project="proj_a"), cost_row(DAY, "10.00", project="proj_b"),
        cost_row(DAY2, "1.25", project="proj_a"),
        cost_row(DAY3, "0.50", project="proj_a", line_item="gpt-5-2025-08-07, output")])
    return engine


def _same_report(engine, by, **filters) -> pd.DataFrame:
    """The rollup's report, after checking it equals the one priced from usage."""
    kept = spend_with_estimates(engine, SYSTEM, by, **filters)
    priced = spend_with_estimates(engine, SYSTEM, by, book=current_book(engine), **filters)
    columns = sorted(priced.columns)
    assert sorted(kept.columns) == columns, by
    pd.testing.assert_frame_equal(kept[columns], priced[columns], check_dtype=False,
                                  obj=f"report by {by}")
    return kept


@pytest.mark.parametrize("by", GROUPINGS, ids=str)
def test_every_grouping_matches_pricing_the_usage(org, by):
    report = _same_report(org, by)
    assert len(report) > 0
    _same_report(org, by, start=DAY2, end=DAY3)
    _same_report(org, by, project="proj_b")


def test_every_grouping_adds_up_to_the_same_total(org):
    totals = {str(by): sum((c for c in spend_with_estimates(org, SYSTEM, by)["cost_usd"]
                            if c is not None), Decimal(0)) for by in GROUPINGS}
    assert max(totals.values()) - min(totals.values()) < Decimal("1e-8"), totals


def test_a_scoped_user_sees_only_their_projects(org):
    alice = Principal("alice", "reader", frozenset({"proj_a"}))
    report = spend_with_estimates(org, alice, "api_key")
    assert set(report["api_key"]) - {""} == {"key_a1", "key_a2"}
    everyone = spend_with_estimates(org, SYSTEM, "api_key").set_index("api_key")
    for row in report.itertuples():
        assert row.cost_usd == everyone.loc[row.api_key, "cost_usd"]


def _marked(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(SpendDailyDirty)).scalar_one()


def test_an_import_marks_its_days_and_the_next_report_settles_them(org):
    spend_with_estimates(org, SYSTEM, "project")
    assert _marked(org) == 0
    day4 = DAY3 + timedelta(days=1)
    _import(org, [usage_row(day4, project="proj_c", key="key_c")], [])
    assert _marked(org) == 1
    report = _same_report(org, "project").set_index("project")
    assert report.loc["proj_c", "basis"] == "estimated"
    assert _marked(org) == 0


def test_a_deleted_import_and_a_purge_leave_the_rollup(org):
    ids = _import(org, [], [cost_row(DAY3, "7.00", project="proj_b")])
    before = spend_with_estimates(org, SYSTEM, "day").set_index("day")
    assert before.loc[DAY3.isoformat(), "cost_usd"] == Decimal("7.50")
    delete_import(org, OWNER, ids[0])
    after = _same_report(org, "day").set_index("day")
    assert after.loc[DAY3.isoformat(), "cost_usd"] == Decimal("0.50")
    purge_older_than(org, OWNER, 1, today=DAY3 + timedelta(days=40))
    assert _same_report(org, "day").empty
    with org.connect() as conn:
        assert conn.execute(select(func.count()).select_from(SpendDaily)).scalar_one() == 0


def test_a_price_change_rebuilds_the_estimates(org):
    before = spend_with_estimates(org, SYSTEM, "project").set_index("project")
    add_price(org, OWNER, {"provider": "openai", "family": "gpt-5", "effective_from": "2026-01-01",
                           "input_per_1m": "100", "output_per_1m": "100"})
    after = _same_report(org, "project").set_index("project")
    assert after.loc["proj_b", "cost_usd"] > before.loc["proj_b", "cost_usd"]  # its gap day
    assert after.loc["proj_a", "cost_usd"] == before.loc["proj_a", "cost_usd"]  # all billed


def test_an_org_level_bill_shared_by_project_is_left_to_pricing_the_usage(engine):
    """The rollup settles days as a report by day does; a report that would share an
    org-level bill by project (or hide it behind a project filter) prices the usage."""
    _import(engine, [usage_row(DAY, project="proj_a", key="key_a", input_tokens="1000.0"),
                     usage_row(DAY, project="proj_b", key="key_b", input_tokens="3000.0")],
            [cost_row(DAY, "8.00", project="")])
    assert spend_daily.report_rows(engine, SYSTEM, ["day"]) is not None
    assert spend_daily.report_rows(engine, SYSTEM, ["api_key"]) is not None
    assert spend_daily.report_rows(engine, SYSTEM, ["project"]) is None
    assert spend_daily.report_rows(engine, SYSTEM, ["day"], project="proj_a") is None
    for by in ("project", "day", "api_key", "model"):
        _same_report(engine, by)


def test_two_of_model_key_and_user_are_left_to_pricing_the_usage(org):
    assert spend_daily.report_rows(org, SYSTEM, ["model", "api_key"]) is None
    _same_report(org, ["model", "api_key"])


def test_nothing_is_rebuilt_when_nothing_changed(org):
    spend_with_estimates(org, SYSTEM, "project")
    assert spend_daily.refresh(org) is False
    _import(org, [], [cost_row(DAY, "4.00", project="proj_a")])  # the same bill again
    assert spend_daily.refresh(org) in (False, True)
    assert spend_daily.refresh(org) is False


def test_an_empty_store_has_an_empty_report(engine):
    assert spend_daily.report_rows(engine, SYSTEM, ["project"]).rows == []
    assert date(2026, 1, 1)  # the store need not hold any day for a report to be asked
