"""Forecasts from the store: scopes, the billing calendar, "as of", the cache, the backtest
and the forecast re-costed under a pricing scenario.

The store bills $10/day to Dev and $30/day to Prod from 1 Jul to 14 Nov 2026, so every
figure below is worked out by hand: a constant series ends the period at its daily rate
times the period's days.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from analytics.access import SYSTEM, AccessDenied, Principal
from analytics.demo import simulate
from analytics.forecast import ForecastError
from analytics.forecasting import (
    backtest_summary,
    clear_cache,
    cumulative_actual,
    forecast_scope,
    forecast_scopes,
    scenario_forecast,
)
from analytics.org import set_anchor_day
from analytics.price_store import current_book
from analytics.pricing import PriceBook, PriceListScenario
from analytics.store import dispose_engine, get_engine
from tests.forecast_fixtures import DEV, PROD, flat_org, load

START, LAST = date(2026, 7, 1), date(2026, 11, 14)


@pytest.fixture(scope="module")
def flat(tmp_path_factory):
    """Shared by the module: forecasts are cached per store, so later tests reuse them."""
    url = f"sqlite:///{tmp_path_factory.mktemp('flat') / 'store.db'}"
    engine = get_engine(url)
    load(engine, flat_org(START, LAST, {DEV: Decimal("10"), PROD: Decimal("30")}))
    yield engine
    clear_cache()
    dispose_engine(url)


def test_org_forecast_defaults_to_the_last_billed_day_and_calendar_month(flat):
    r = forecast_scope(flat, SYSTEM)
    assert (r.period_start, r.period_end, r.as_of) == (date(2026, 11, 1), date(2026, 11, 30),
                                                       LAST)
    assert r.actual_to_date == 14 * 40.0
    assert r.forecast == pytest.approx(30 * 40.0, rel=0.01)
    assert r.low <= r.forecast <= r.high
    assert r.interval == 0.8 and r.method == "shipped" and not r.rough


def test_project_and_environment_scopes(flat):
    dev = forecast_scope(flat, SYSTEM, f"project:{DEV}")
    env = forecast_scope(flat, SYSTEM, "env:Development")
    assert dev.actual_to_date == env.actual_to_date == 140.0
    assert env.forecast == dev.forecast == pytest.approx(300.0, rel=0.01)
    with pytest.raises(ForecastError, match="no billed spend"):
        forecast_scope(flat, SYSTEM, "env:Staging")


def test_as_of_uses_only_data_to_that_day_and_is_capped_at_the_data(flat):
    r = forecast_scope(flat, SYSTEM, f"project:{PROD}", as_of=date(2026, 10, 10))
    assert (r.period_start, r.period_end, r.as_of) == (date(2026, 10, 1), date(2026, 10, 31),
                                                       date(2026, 10, 10))
    assert r.actual_to_date == 10 * 30.0
    assert r.forecast == pytest.approx(31 * 30.0, rel=0.01)
    later = forecast_scope(flat, SYSTEM, f"project:{PROD}", as_of=date(2027, 1, 1))
    assert later.as_of == LAST, "days after the data are unknown, not $0"


def test_the_billing_anniversary_sets_the_period(flat):
    set_anchor_day(flat, SYSTEM, 15)
    try:
        r = forecast_scope(flat, SYSTEM, f"project:{DEV}")
    finally:
        set_anchor_day(flat, SYSTEM, 1)
    assert (r.period_start, r.period_end) == (date(2026, 10, 15), date(2026, 11, 14))
    assert r.actual_to_date == r.forecast == 31 * 10.0, "the period's last day is the data's"
    assert r.low == r.high == r.forecast


def test_forecasts_are_cached_per_data_version_and_principal(flat, tmp_path):
    first = forecast_scope(flat, SYSTEM, f"project:{DEV}")
    assert forecast_scope(flat, SYSTEM, f"project:{DEV}") is first
    scoped = Principal("sam", "reader", frozenset({DEV}))
    mine = forecast_scope(flat, scoped, "org")
    assert mine is not forecast_scope(flat, SYSTEM, "org")
    assert mine.actual_to_date == 140.0, "a scoped user's 'org' is their projects only"
    with pytest.raises(AccessDenied):
        forecast_scope(flat, scoped, f"project:{PROD}")


def test_an_import_changes_the_answer_at_once(tmp_path):
    engine = get_engine(f"sqlite:///{tmp_path / 'grow.db'}")
    load(engine, flat_org(date(2026, 8, 1), date(2026, 9, 20), {DEV: Decimal("10")}))
    scopes = ["org", f"project:{DEV}", f"project:{PROD}"]
    before = forecast_scopes(engine, SYSTEM, scopes, as_of=date(2026, 9, 20))
    line = cumulative_actual(engine, SYSTEM, "org", before["org"])
    assert isinstance(before[f"project:{PROD}"], ForecastError), "Prod has no spend yet"
    load(engine, flat_org(date(2026, 9, 1), date(2026, 9, 20), {DEV: Decimal("20"),
                                                                 PROD: Decimal("5")}))
    after = forecast_scopes(engine, SYSTEM, scopes, as_of=date(2026, 9, 20))
    assert [r.actual_to_date for r in (before["org"], before[f"project:{DEV}"])] == [200.0, 200.0]
    assert [r.actual_to_date for r in after.values()] == [500.0, 400.0, 100.0]
    # The chart's actual line is cached with the forecast, and refreshed with it.
    assert (line.iloc[-1], cumulative_actual(engine, SYSTEM, "org", after["org"]).iloc[-1]) \
        == (200.0, 500.0)
    dispose_engine(f"sqlite:///{tmp_path / 'grow.db'}")


def test_many_scopes_at_once_match_one_by_one_and_add_up(flat):
    """The page's batch (read in one query, forecast in worker processes) gives what the CLI's
    one-scope call gives, and the projects' forecasts add up to the org's."""
    scopes = ["org", f"project:{DEV}", f"project:{PROD}", "env:Staging"]
    clear_cache()
    many = forecast_scopes(flat, SYSTEM, scopes)
    assert list(many) == scopes
    assert isinstance(many["env:Staging"], ForecastError)
    clear_cache()
    for scope in scopes[:3]:
        one = forecast_scope(flat, SYSTEM, scope)
        assert (one.forecast, one.low, one.high) == (many[scope].forecast, many[scope].low,
                                                     many[scope].high), scope
    org, dev, prod = (many[s] for s in scopes[:3])
    assert org.actual_to_date == dev.actual_to_date + prod.actual_to_date
    assert org.forecast == pytest.approx(dev.forecast + prod.forecast, rel=0.01)
    assert forecast_scopes(flat, SYSTEM, scopes[:3])["org"] is forecast_scope(flat, SYSTEM)


def test_a_batch_refuses_a_project_the_user_cannot_see(flat):
    scoped = Principal("sam", "reader", frozenset({DEV}))
    with pytest.raises(AccessDenied):
        forecast_scopes(flat, scoped, [f"project:{DEV}", f"project:{PROD}"])


def test_cumulative_actual_is_the_period_so_far(flat):
    r = forecast_scope(flat, SYSTEM, f"project:{DEV}")
    line = cumulative_actual(flat, SYSTEM, f"project:{DEV}", r)
    assert list(line.index) == [date(2026, 11, d) for d in range(1, 15)]
    assert line.iloc[0] == 10.0 and line.iloc[-1] == r.actual_to_date == 140.0


def test_backtest_replays_mid_period_on_the_scopes_history(flat):
    result = backtest_summary(flat, SYSTEM)
    # Complete months in the data: Jul, Aug, Sep, Oct (November is not over).
    assert [p.month for p in result.periods["period_start"]] == [7, 8, 9, 10]
    assert set(result.periods["as_of"].map(lambda d: d.day)) == {15}
    assert list(result.periods["actual"]) == [31 * 40.0, 31 * 40.0, 30 * 40.0, 31 * 40.0]
    assert result.mape < 0.05, "a constant spend is forecast almost exactly"
    assert "Over the last 4 periods" in result.summary()


def test_scenario_forecast_scales_the_spend_still_to_come(tmp_path):
    """Every price doubled: the last 28 days cost twice as much, so the part of the period
    still to come doubles and the part already spent does not."""
    engine = get_engine(f"sqlite:///{tmp_path / 'sim.db'}")
    load(engine, simulate(seed=5, days=45, end=date(2026, 11, 14), scale=0.05))
    rows = current_book(engine).to_frame()
    for column in ("input_per_1m", "cached_input_per_1m", "cache_write_per_1m",
                   "output_per_1m"):
        rows[column] = [str(Decimal(v) * 2) if v not in ("", None) else v
                        for v in rows[column]]
    doubled = PriceListScenario(PriceBook.from_frame(rows, "doubled"), "doubled")
    effect = scenario_forecast(engine, SYSTEM, doubled)
    base = effect.baseline
    assert effect.ratio == pytest.approx(2.0, rel=1e-6)
    spent = base.actual_to_date
    assert effect.forecast == pytest.approx(spent + 2 * (base.forecast - spent), abs=0.01)
    assert effect.high == pytest.approx(spent + 2 * (base.high - spent), abs=0.01)
    dispose_engine(f"sqlite:///{tmp_path / 'sim.db'}")
