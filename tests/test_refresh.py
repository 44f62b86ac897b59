"""After an import, what users were looking at is recomputed in the background: the next
caller finds it kept, a caller arriving mid-refresh waits for it, a failure stays in the log,
and a scoped user's refreshed result holds only their projects."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from datetime import date, timedelta

import pandas as pd
import pytest

from analytics import planning
from analytics.access import SYSTEM, Principal
from analytics.demo import simulate, write_cost_csv, write_usage_csv
from analytics.forecasting import backtest_summary, clear_cache, forecast_scopes
from analytics.insights import insights_report
from analytics.keys import key_inventory
from analytics.memo import clear_all, per_data_version, stale_calls
from analytics.queries import spend
from analytics.reconcile import reconcile
from analytics.reconcile_rows import DEFAULT_DAYS
from analytics.refresh import refresh, wait_idle, watch
from analytics.series import data_version
from analytics.spend_estimates import unpriced_usage
from tests.conftest import ROOT
from tests.forecast_fixtures import load
from tests.pricing_fixtures import BATCH, D1, D2, GPT4O, MINI, PROD, import_exports, usage

CALLS: list[str] = []
GATE = threading.Event()  # a computation of `_held_total` waits for it
STARTED = threading.Event()  # set when `_held_total` starts computing
BROKEN = threading.Event()  # `_spend_or_fail` fails while set
WAIT_S = 120


@per_data_version
def _spend_by_project(engine, principal, tag: str) -> pd.DataFrame:
    CALLS.append(tag)
    return spend(engine, principal, "project")


@per_data_version
def _held_total(engine, principal) -> tuple[float]:
    """A result that is not a frame (kept and handed out as the same object)."""
    STARTED.set()
    assert GATE.wait(WAIT_S)
    CALLS.append("held")
    return (float(spend(engine, principal, "project")["input_tokens"].sum()),)


@per_data_version
def _spend_or_fail(engine, principal) -> pd.DataFrame:
    CALLS.append("fallible")
    if BROKEN.is_set():
        raise RuntimeError("the store hiccupped")
    return spend(engine, principal, "project")


@per_data_version
def _outer(engine, principal) -> int:
    """A kept call that makes another kept call: only the outer one is the user's."""
    return len(_spend_by_project(engine, principal, "inner"))


@pytest.fixture
def store(engine, tmp_path):
    clear_all()
    clear_cache()
    CALLS.clear()
    GATE.set()
    BROKEN.clear()
    import_exports(engine, tmp_path / "first", [usage(D1, PROD, GPT4O, 1000, 0, 100)], [])
    yield engine
    GATE.set()
    assert wait_idle(WAIT_S)
    clear_all()


def _import_more(engine, folder) -> None:
    """A second day of usage for another project, through the real importers."""
    import_exports(engine, folder, [usage(D2, BATCH, MINI, 500, 0, 50)], [])


def test_an_import_is_refreshed_before_the_caller_asks(store, tmp_path):
    _spend_by_project(store, SYSTEM, "a")
    _import_more(store, tmp_path / "more")
    refresh(store)
    assert wait_idle(WAIT_S)
    assert CALLS == ["a", "a"]  # made again in the background, for the new version
    after = _spend_by_project(store, SYSTEM, "a")
    assert CALLS == ["a", "a"]  # the caller found it kept
    assert after["project"].tolist() == [BATCH, PROD]
    assert stale_calls(store, data_version(store)) == []


def test_nothing_is_recomputed_when_the_data_did_not_change(store):
    _spend_by_project(store, SYSTEM, "a")
    refresh(store)
    assert wait_idle(WAIT_S)
    assert CALLS == ["a"]


def test_only_the_users_call_is_made_again_not_its_parts(store, tmp_path):
    assert _outer(store, SYSTEM) == 1
    assert [c.fn.__name__ for c in stale_calls(store, "another")] == ["_outer"]
    _import_more(store, tmp_path / "more")
    refresh(store)
    assert wait_idle(WAIT_S)
    assert _outer(store, SYSTEM) == 2
    assert CALLS == ["inner", "inner"]


def test_a_caller_arriving_mid_refresh_waits_and_gets_the_same_object(store, tmp_path):
    before = _held_total(store, SYSTEM)
    GATE.clear()
    STARTED.clear()
    _import_more(store, tmp_path / "more")
    refresh(store)
    assert STARTED.wait(WAIT_S)  # the background computation is under way, held at the gate
    got: list[tuple[float]] = []
    caller = threading.Thread(target=lambda: got.append(_held_total(store, SYSTEM)))
    caller.start()
    caller.join(0.3)
    assert caller.is_alive()  # waiting for the background result, not computing its own
    GATE.set()
    caller.join(WAIT_S)
    assert wait_idle(WAIT_S)
    assert CALLS == ["held", "held"]  # once before the import, once in the background
    assert got[0] is _held_total(store, SYSTEM)
    assert got[0][0] == before[0] + 500


def test_a_failing_refresh_is_logged_and_the_next_caller_computes(store, tmp_path, caplog):
    _spend_or_fail(store, SYSTEM)
    _import_more(store, tmp_path / "more")
    BROKEN.set()
    with caplog.at_level(logging.WARNING, logger="analytics.refresh"):
        refresh(store)
        assert wait_idle(WAIT_S)
    assert any("_spend_or_fail" in r.getMessage() and r.exc_info for r in caplog.records)
    BROKEN.clear()
    assert _spend_or_fail(store, SYSTEM)["project"].tolist() == [BATCH, PROD]
    assert CALLS == ["fallible", "fallible", "fallible"]  # before, failed refresh, caller


def test_a_scoped_users_refreshed_result_holds_only_their_projects(store, tmp_path):
    sam = Principal("sam", "reader", frozenset({BATCH}))
    assert _spend_by_project(store, sam, "a").empty
    _spend_by_project(store, SYSTEM, "a")
    _import_more(store, tmp_path / "more")
    refresh(store)
    assert wait_idle(WAIT_S)
    assert CALLS == ["a", "a", "a", "a"]
    assert _spend_by_project(store, sam, "a")["project"].tolist() == [BATCH]
    assert _spend_by_project(store, SYSTEM, "a")["project"].tolist() == [BATCH, PROD]
    assert len(CALLS) == 4  # both found kept, each for its own scope


def test_the_pages_heavy_figures_follow_the_new_data(engine):
    """The real calls behind the Insights, Allocation, API keys, Price book, Forecast and
    Reconcile pages, made with their defaults: refreshed for the newest day, not the old
    window."""
    clear_all()
    clear_cache()
    org = simulate(days=70, end=date(2026, 10, 6))  # August: a whole month to backtest
    load(engine, org, upto=org.end - timedelta(days=1))
    asked = [lambda: insights_report(engine, SYSTEM),
             lambda: planning.outlook(engine, SYSTEM),
             lambda: key_inventory(engine, SYSTEM),
             lambda: unpriced_usage(engine, SYSTEM),
             lambda: forecast_scopes(engine, SYSTEM, ["org"]),
             lambda: backtest_summary(engine, SYSTEM),
             lambda: reconcile(engine, SYSTEM, last_days=DEFAULT_DAYS)]
    for call in asked:
        call()
    load(engine, org)  # the last day arrives
    refresh(engine)
    assert wait_idle(WAIT_S)
    assert stale_calls(engine, data_version(engine)) == []  # each made again, none failed
    report, _ = insights_report(engine, SYSTEM)
    assert report.end == org.end
    assert planning.outlook(engine, SYSTEM).as_of == org.end
    assert forecast_scopes(engine, SYSTEM, ["org"])["org"].as_of == org.end
    days = reconcile(engine, SYSTEM, last_days=DEFAULT_DAYS).rows["day"]
    assert (days.min(), days.max()) == (str(org.end - timedelta(days=DEFAULT_DAYS - 1)),
                                        str(org.end))
    clear_all()


def test_an_import_by_another_process_is_noticed(store, db_url, tmp_path):
    watch(store, every_s=0.1)
    _spend_by_project(store, SYSTEM, "a")
    org = simulate(days=2, end=D2)
    files = [write_usage_csv(org, tmp_path / "completions_usage.csv", org.start, org.end),
             write_cost_csv(org, tmp_path / "cost.csv", org.start, org.end)]
    subprocess.run([sys.executable, "-m", "analytics", "import", "--db", db_url,
                    *map(str, files)], check=True, capture_output=True, cwd=ROOT)
    # Two files, two imports: the watcher may refresh after each. Wait until it has caught
    # up with the last one.
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline and (
            stale_calls(store, data_version(store)) or not wait_idle(0)):
        time.sleep(0.05)
    assert wait_idle(WAIT_S)
    made = len(CALLS)
    assert made >= 2, "made again in the background"
    _spend_by_project(store, SYSTEM, "a")
    assert len(CALLS) == made, "the caller found the newest result kept"


def test_a_caller_waits_a_bounded_time_then_computes_itself(store, tmp_path, monkeypatch):
    """A background computation that hangs does not hang the user with it."""
    from analytics import memo

    monkeypatch.setattr(memo, "WAIT_FOR_OTHERS_S", 0.5)
    _held_total(store, SYSTEM)
    GATE.clear()
    STARTED.clear()
    _import_more(store, tmp_path / "more")
    refresh(store)
    assert STARTED.wait(WAIT_S)  # the refresh holds the result's lock, stuck at the gate
    got: list[tuple[float]] = []
    caller = threading.Thread(target=lambda: got.append(_held_total(store, SYSTEM)))
    caller.start()
    time.sleep(1.0)  # past the bounded wait: the caller now computes on its own...
    GATE.set()  # ...which, like the stuck one, needs the gate (shared by both)
    caller.join(WAIT_S)
    assert not caller.is_alive() and got
    assert CALLS.count("held") == 3  # before the import, the refresh, and the caller's own


def test_a_disposed_store_is_not_refreshed(db_url, tmp_path):
    """Once the app lets a store go, background work must not reopen it."""
    from analytics.store import dispose_engine, get_engine

    engine = get_engine(db_url)
    clear_all()
    CALLS.clear()
    import_exports(engine, tmp_path / "first", [usage(D1, PROD, GPT4O, 1000, 0, 100)], [])
    _spend_by_project(engine, SYSTEM, "a")
    _import_more(engine, tmp_path / "more")
    dispose_engine(db_url)
    refresh(engine)
    assert wait_idle(WAIT_S)
    assert CALLS == ["a"], "nothing was recomputed for the disposed store"
    clear_all()


def test_a_refresh_resolves_the_current_price_book_again(store, tmp_path):
    """The user's call (no book given) is what is replayed, so a price added before the next
    import is in the refreshed result, not the book of the first visit."""
    from analytics.price_store import add_price, current_book
    from analytics.spend_estimates import _unpriced_usage

    assert unpriced_usage(store, SYSTEM).empty
    assert [c.fn.__name__ for c in stale_calls(store, "another")] == ["unpriced_usage"]
    add_price(store, SYSTEM, {"provider": "openai", "family": "gpt-4o",
                              "effective_from": "2020-01-01", "input_per_1m": "9",
                              "output_per_1m": "9"})
    _import_more(store, tmp_path / "more")
    refresh(store)
    assert wait_idle(WAIT_S)
    books = [args[-1] for _, _, _, args, _ in _unpriced_usage.kept.keys()]
    assert books == [current_book(store)], "kept for the new data, priced with the new book"
