"""Spend is counted once however it arrives: the same file twice, overlapping downloads, the
usage CSV and the Admin API, a cost export grouped two ways, org totals beside project rows.
Every expected figure is a Decimal sum of the text written here. (Issue: store, importers
and CLI.)"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine

from analytics.access import SYSTEM
from analytics.demo import COST_HEADER_V2, simulate, write_exports
from analytics.ingest import import_sources
from analytics.queries import import_history, spend, total_cost
from tests.helpers import store_snapshot, write
from tests.test_import_errors import (
    DAY,
    cost_csv,
    cost_result,
    cost_row,
    cost_row_v2,
    page,
    usage_csv,
    usage_result,
    usage_row,
)

PROJECTS = ("proj_a", "proj_b")
ITEMS = ("gpt-5-2025-08-07, input", "gpt-5-2025-08-07, output", "gpt-4o-2024-08-06, input")
KEYS = ("key_1", "key_2", "key_3")


def _day(n: int) -> date:
    return DAY + timedelta(days=n)


def _amount(n: int, p: int, i: int) -> Decimal:
    """A distinct amount for day n, project p, line item i; 7 decimals, so a quarter of it
    still fits the store's nano-dollar resolution exactly."""
    return Decimal(f"{n + 1}.{p + 1}{i + 1}34567")


def _cost_rows(days: range) -> list[list[str]]:
    return [cost_row(_day(n), f"{_amount(n, p, i):.16f}", item, proj)
            for n in days for p, proj in enumerate(PROJECTS) for i, item in enumerate(ITEMS)]


def _tokens(n: int, p: int, k: int) -> int:
    return 1000 * (n + 1) + 100 * p + k


def _usage_rows(days: range) -> list[list[str]]:
    return [usage_row(_day(n), proj, key, input_tokens=f"{_tokens(n, p, k)}.0")
            for n in days for p, proj in enumerate(PROJECTS) for k, key in enumerate(KEYS)]


def _truth_by_day(days: range) -> dict[str, Decimal]:
    return {_day(n).isoformat(): sum((_amount(n, p, i) for p in range(len(PROJECTS))
                                      for i in range(len(ITEMS))), Decimal(0)) for n in days}


def _by(engine: Engine, dim: str) -> dict[str, Decimal]:
    return {getattr(r, dim): r.cost_usd for r in spend(engine, SYSTEM, dim).itertuples()}


def _input_tokens(engine: Engine) -> int:
    return int(spend(engine, SYSTEM, "day")["input_tokens"].sum())


def _import(engine: Engine, tmp: Path, files: dict[str, bytes], user: str = "cli") -> list:
    results = import_sources(engine, [(n, write(tmp, n, c)) for n, c in files.items()], user)
    assert all(r.ok for r in results), [r.error for r in results]
    return results


def test_reimport_adds_nothing(engine: Engine, tmp_path: Path) -> None:
    org = simulate(seed=3, days=12, end=date(2026, 9, 12), scale=0.02)
    paths = write_exports(org, tmp_path / "exports", window_days=5, overlap_days=2)
    sources = [(p.name, p) for p in paths]
    first = import_sources(engine, sources)
    assert all(r.ok for r in first) and sum(r.new for r in first) > 0
    truth = org.truth_by_project()
    after_first = store_snapshot(engine)
    second = import_sources(engine, sources)
    assert [r.new for r in second] == [0] * len(second)
    assert [r.replaced for r in second] == [r.rows for r in second]
    assert store_snapshot(engine)["usage"] == after_first["usage"]
    assert store_snapshot(engine)["cost"] == after_first["cost"]
    got = _by(engine, "project")
    assert set(got) == set(truth)
    for pid, expected in truth.items():  # nano-dollar storage: far inside a cent
        assert abs(got[pid] - expected) < Decimal("0.000001"), pid
    assert _input_tokens(engine) == sum(u["input"] for u in org.usage)


def test_overlapping_windows_count_each_day_once(engine: Engine, tmp_path: Path) -> None:
    windows = [range(0, 4), range(2, 6), range(4, 8)]
    files = {}
    for w in windows:
        files[f"cost_{w.start}.csv"] = cost_csv(_cost_rows(w))
        files[f"completions_usage_{w.start}.csv"] = usage_csv(_usage_rows(w))
    results = _import(engine, tmp_path, files)
    overlap_rows = 2 * len(PROJECTS) * len(ITEMS)  # two shared days per later cost window
    assert [r.replaced for r in results if r.kind == "cost"] == [0, overlap_rows, overlap_rows]
    assert _by(engine, "day") == _truth_by_day(range(0, 8))
    assert total_cost(engine, SYSTEM) == sum(_truth_by_day(range(0, 8)).values())
    assert _input_tokens(engine) == sum(_tokens(n, p, k) for n in range(8)
                                        for p in range(len(PROJECTS)) for k in range(len(KEYS)))


def _api_pages(days: range) -> dict[str, bytes]:
    """The same days as Admin API pages, one page per two days; amounts as 39-decimal text."""
    files = {}
    for start in range(days.start, days.stop, 2):
        chunk = range(start, min(start + 2, days.stop))
        files[f"usage_page{start:03d}.json"] = json.dumps(page({_day(n): [
            usage_result(_tokens(n, p, k), proj, key)
            for p, proj in enumerate(PROJECTS) for k, key in enumerate(KEYS)]
            for n in chunk})).encode()
        files[f"costs_page{start:03d}.json"] = json.dumps(page({_day(n): [
            cost_result(f"{_amount(n, p, i):.39f}", item, proj)
            for p, proj in enumerate(PROJECTS) for i, item in enumerate(ITEMS)]
            for n in chunk})).encode()
    return files


@pytest.mark.parametrize("api_first", [False, True], ids=["csv-then-api", "api-then-csv"])
def test_usage_csv_and_admin_api_pages_count_once(engine: Engine, tmp_path: Path,
                                                  api_first: bool) -> None:
    days = range(0, 5)
    csvs = {"completions_usage.csv": usage_csv(_usage_rows(days)),
            "cost.csv": cost_csv(_cost_rows(days))}
    api = _api_pages(days)
    tokens = sum(_tokens(n, p, k) for n in days for p in range(len(PROJECTS))
                 for k in range(len(KEYS)))
    routes = {"api": (api, {"openai_api_usage_completions", "openai_api_costs"}),
              "csv": (csvs, {"openai_usage_csv", "openai_cost_csv"})}
    for route in ("api", "csv") if api_first else ("csv", "api"):
        files, formats = routes[route]
        results = _import(engine, tmp_path, files)
        assert {r.format for r in results} == formats and len(results) == 2
        assert _by(engine, "day") == _truth_by_day(days)
        assert _input_tokens(engine) == tokens


@pytest.mark.parametrize("by_key_first", [False, True], ids=["10-then-17", "17-then-10"])
def test_cost_grouped_by_line_item_and_by_key_count_once(engine: Engine, tmp_path: Path,
                                                         by_key_first: bool) -> None:
    days = range(0, 3)
    by_item = cost_csv(_cost_rows(days))
    # The same dollars split over keys and users: shares of 1/2, 1/4, 1/4 are exact decimals.
    shares = (Decimal("0.5"), Decimal("0.25"), Decimal("0.25"))
    by_key = cost_csv([
        cost_row_v2(_day(n), f"{_amount(n, p, i) * share:.16f}", item, proj, key, f"user_{k}")
        for n in days for p, proj in enumerate(PROJECTS) for i, item in enumerate(ITEMS)
        for k, (key, share) in enumerate(zip(KEYS, shares, strict=True))], COST_HEADER_V2)
    files = [{"cost_by_key.csv": by_key}, {"cost_by_item.csv": by_item}]
    for f in files if by_key_first else files[::-1]:
        _import(engine, tmp_path, f)
        assert _by(engine, "day") == _truth_by_day(days)
        assert _by(engine, "project") == {
            proj: sum((_amount(n, p, i) for n in days for i in range(len(ITEMS))), Decimal(0))
            for p, proj in enumerate(PROJECTS)}


@pytest.mark.parametrize("org_first", [False, True], ids=["projects-first", "org-first"])
def test_org_totals_never_add_to_project_rows(engine: Engine, tmp_path: Path,
                                             org_first: bool) -> None:
    project_rows = [cost_row(_day(0), "2.00", ITEMS[0], "proj_a"),
                    cost_row(_day(0), "3.00", ITEMS[0], "proj_b")]
    # The org-wide figure for day 0 differs from the project rows' sum (5.00), so adding it
    # (10.10) or preferring it (5.10) would both show; day 1 has only the org total.
    org_rows = [cost_row(_day(0), "5.10", ITEMS[0], ""), cost_row(_day(1), "7.00", ITEMS[0], "")]
    files = [{"cost_projects.csv": cost_csv(project_rows)},
             {"cost_org_total.csv": cost_csv(org_rows)}]
    for f in files[::-1] if org_first else files:
        _import(engine, tmp_path, f)
    assert _by(engine, "day") == {_day(0).isoformat(): Decimal("5.00"),
                                  _day(1).isoformat(): Decimal("7.00")}
    assert total_cost(engine, SYSTEM) == Decimal("12.00")
    assert _by(engine, "project") == {"proj_a": Decimal("2.00"), "proj_b": Decimal("3.00"),
                                      "": Decimal("7.00")}


def test_every_import_is_recorded(engine: Engine, tmp_path: Path) -> None:
    first = cost_csv(_cost_rows(range(0, 2)))
    second = cost_csv(_cost_rows(range(1, 3)))
    usage = usage_csv(_usage_rows(range(0, 1)))
    api = _api_pages(range(0, 4))
    pages = {n: c for n, c in api.items() if n.startswith("costs")}
    started = datetime.now(UTC).replace(tzinfo=None)
    _import(engine, tmp_path, {"cost_1.csv": first, "usage.csv": usage}, user="alice")
    _import(engine, tmp_path, {"cost_2.csv": second}, user="bob")
    _import(engine, tmp_path, pages, user="carol")
    history = import_history(engine).sort_values("id")
    per_day = len(PROJECTS) * len(ITEMS)
    expected = [
        ("cost_1.csv", hashlib.sha256(first).hexdigest(), "openai_cost_csv", 2 * per_day,
         2 * per_day, 0, "alice", DAY, _day(1)),
        ("usage.csv", hashlib.sha256(usage).hexdigest(), "openai_usage_csv",
         len(PROJECTS) * len(KEYS), len(PROJECTS) * len(KEYS), 0, "alice", DAY, DAY),
        ("cost_2.csv", hashlib.sha256(second).hexdigest(), "openai_cost_csv", 2 * per_day,
         per_day, per_day, "bob", _day(1), _day(2)),
        ("costs_page000.json (+1 pages)",
         hashlib.sha256(pages["costs_page000.json"] + pages["costs_page002.json"]).hexdigest(),
         "openai_api_costs", 4 * per_day, per_day, 3 * per_day, "carol", DAY, _day(3)),
    ]
    got = [(r.file_name, r.file_hash, r.format, r.rows_read, r.rows_new, r.rows_replaced,
            r.imported_by, _as_date(r.first_day), _as_date(r.last_day))
           for r in history.itertuples()]
    assert got == expected
    stamps = [datetime.fromisoformat(str(t)) for t in history["imported_at"]]
    assert all(started - timedelta(seconds=1) <= t <= datetime.now(UTC).replace(tzinfo=None)
               for t in stamps)
    assert history["total_usd"].iloc[2] == sum(_truth_by_day(range(1, 3)).values())
    assert history["total_usd"].iloc[1] is None  # usage carries no billed dollars


def _as_date(value: object) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
