"""Explore's figures add up to the bill, whatever the grouping and grain."""

from __future__ import annotations

from datetime import date

import pytest

from analytics.access import SYSTEM
from analytics.demo import simulate, write_exports
from analytics.explore import explore
from analytics.ingest import import_sources


@pytest.fixture
def org(engine, tmp_path):
    sim = simulate(days=45, end=date(2026, 10, 31), scale=0.05)
    files = write_exports(sim, tmp_path / "x", window_days=20, overlap_days=5)
    assert all(r.ok for r in import_sources(engine, [(p.name, p) for p in files]))
    return sim


@pytest.mark.parametrize("group", ["project", "model", "model_family", "api_key", "user"])
@pytest.mark.parametrize("grain", ["day", "week", "month"])
def test_every_grouping_adds_up_to_the_bill(engine, org, group, grain):
    start, end = date(2026, 10, 1), date(2026, 10, 31)
    bill = float(sum(v for d, v in org.truth_by_day().items() if start <= d <= end))
    result = explore(engine, SYSTEM, group, grain, start, end)
    assert result.table["cost_usd"].sum() == pytest.approx(bill, abs=0.01)
    assert result.series["cost_usd"].sum() == pytest.approx(bill, abs=0.01)
    if group in ("api_key", "user"):
        assert set(result.table["basis"]) == {"allocated"}
        assert "" not in set(result.table["key"])
        assert "split in proportion" in result.note
    else:
        assert set(result.table["basis"]) == {"billed"}


def test_family_groups_snapshots(engine, org):
    table = explore(engine, SYSTEM, "model_family", "month", date(2026, 10, 1),
                    date(2026, 10, 31)).table
    assert "gpt-4o-mini" in set(table["key"]) and "gpt-4o-mini-2024-07-18" not in set(table["key"])


@pytest.mark.parametrize("by", ["api_key", "user"])
def test_report_by_key_adds_up_to_the_bill(engine, org, by):
    from analytics.spend_estimates import spend_with_estimates

    start, end = date(2026, 10, 1), date(2026, 10, 31)
    bill = sum(v for d, v in org.truth_by_day().items() if start <= d <= end)
    frame = spend_with_estimates(engine, SYSTEM, by, start, end)
    assert set(frame["basis"]) == {"allocated"}
    assert "" not in set(frame[by])
    assert abs(sum(frame["cost_usd"]) - bill) < 1e-6


def test_kept_estimates_give_way_to_a_new_import(engine, org, tmp_path):
    """Estimates by key are kept per data version: an import is seen at the next call."""
    from tests.pricing_fixtures import GPT4O, PROD, import_exports, usage

    start, end = date(2026, 10, 1), date(2026, 10, 31)
    assert "key_" + PROD not in set(explore(engine, SYSTEM, "api_key", "week", start, end)
                                    .table["key"])
    import_exports(engine, tmp_path / "more", [usage(date(2026, 10, 15), PROD, GPT4O,
                                                     1_000_000, 0, 100_000)], [])
    table = explore(engine, SYSTEM, "api_key", "week", start, end).table.set_index("key")
    assert table.loc["key_" + PROD, "input_tokens"] == 1_000_000
    assert table.loc["key_" + PROD, "cost_usd"] > 0  # its estimate, read afresh


def test_estimates_use_the_owners_prices(engine, org):
    """Explore prices usage with the store's book, Owner prices included, like every other
    estimate: a new price moves how the bill is split over keys, never the bill."""
    from analytics.price_store import add_price

    start, end = date(2026, 10, 1), date(2026, 10, 31)
    before = explore(engine, SYSTEM, "api_key", "month", start, end).table.set_index("key")
    add_price(engine, SYSTEM, {"provider": "openai", "family": "gpt-4o-mini",
                               "effective_from": "2026-09-01", "input_per_1m": "500",
                               "output_per_1m": "2000"})
    after = explore(engine, SYSTEM, "api_key", "month", start, end).table.set_index("key")
    assert after["cost_usd"].sum() == pytest.approx(before["cost_usd"].sum(), abs=0.01)
    moved = (after["cost_usd"] - before["cost_usd"].reindex(after.index)).abs()
    assert moved.max() > 1.0, "the split follows the Owner's price"
