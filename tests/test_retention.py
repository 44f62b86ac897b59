"""Retention (issue 8, item 3): an Owner purges data older than N months or deletes one import
with the rows it brought; both are audited, change the data version, and nobody else can."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine

from analytics import audit, retention
from analytics.access import SYSTEM, AccessDenied, Principal
from analytics.ingest import import_sources
from analytics.queries import import_history, spend, total_cost
from analytics.series import data_version
from tests.conftest import ROOT
from tests.helpers import store_snapshot, write
from tests.test_import_errors import cost_csv, cost_row, usage_csv, usage_row

OWNER = dataclasses.replace(SYSTEM, username="olivia")
TODAY = date(2026, 11, 27)


def _import(engine: Engine, tmp: Path, name: str, content: bytes) -> int:
    [result] = import_sources(engine, [(name, write(tmp, name, content))], "olivia")
    assert result.ok, result.error
    return result.import_id


def _months(engine: Engine, tmp: Path) -> None:
    """$1 a day on the 1st and 20th of July..November 2026, plus usage of 100 tokens."""
    days = [date(2026, m, d) for m in range(7, 12) for d in (1, 20)]
    _import(engine, tmp, "cost.csv", cost_csv([cost_row(d, "1.00") for d in days]))
    _import(engine, tmp, "usage.csv", usage_csv([usage_row(d, input_tokens="100.0")
                                                 for d in days]))


@pytest.mark.parametrize(("months", "today", "first_kept"), [
    (1, date(2026, 11, 27), date(2026, 10, 27)),
    (3, date(2026, 5, 31), date(2026, 2, 28)),
    (12, date(2028, 2, 29), date(2027, 2, 28)),
    (14, date(2026, 1, 15), date(2024, 11, 15)),
])
def test_cutoff_counts_calendar_months(months: int, today: date, first_kept: date) -> None:
    assert retention.cutoff(months, today) == first_kept


@pytest.mark.parametrize("months", [0, -1, True, 1201])
def test_cutoff_refuses_nonsense(months: int) -> None:
    with pytest.raises(retention.RetentionError):
        retention.cutoff(months, TODAY)


def test_purge_deletes_days_before_the_cutoff_and_is_audited(engine: Engine,
                                                             tmp_path: Path) -> None:
    _months(engine, tmp_path)
    version = data_version(engine)
    preview = retention.purge_preview(engine, OWNER, 2, TODAY)  # keeps 2026-09-27 onwards
    assert (preview.usage_rows, preview.cost_rows, preview.before) == (6, 6, date(2026, 9, 27))
    assert total_cost(engine, SYSTEM) == Decimal("10.00"), "a preview deletes nothing"
    removed = retention.purge_older_than(engine, OWNER, 2, TODAY)
    assert removed == preview
    assert total_cost(engine, SYSTEM) == Decimal("4.00")  # Oct 1, Oct 20, Nov 1, Nov 20
    assert int(spend(engine, SYSTEM, "provider")["input_tokens"].iloc[0]) == 400
    assert data_version(engine) != version
    assert len(import_history(engine)) == 2, "import records are history: kept"
    [row] = audit.entries(engine, action="data.purge").itertuples()
    assert row.username == "olivia" and row.target == "days before 2026-09-27"
    assert json.loads(row.before) == {"usage_rows": 6, "cost_rows": 6}
    assert json.loads(row.after) == {"months_kept": 2, "first_day_kept": "2026-09-27"}


def test_delete_import_removes_its_rows_and_record(engine: Engine, tmp_path: Path) -> None:
    day = date(2026, 9, 1)
    first = _import(engine, tmp_path, "a.csv", cost_csv(
        [cost_row(day + timedelta(days=n), "2.00") for n in range(3)]))
    usage = _import(engine, tmp_path, "u.csv", usage_csv([usage_row(day)]))
    second = _import(engine, tmp_path, "b.csv", cost_csv(
        [cost_row(day + timedelta(days=n), "5.00") for n in range(2, 4)]))
    assert total_cost(engine, SYSTEM) == Decimal("14.00")  # 2 + 2 + 5 + 5
    version = data_version(engine)
    assert retention.import_preview(engine, OWNER, second) == retention.Removal(0, 2, 1)
    removed = retention.delete_import(engine, OWNER, second)
    assert (removed.usage_rows, removed.cost_rows, removed.imports) == (0, 2, 1)
    # the day b.csv had replaced (Sep 3) is not restored: a.csv's row for it was gone
    assert total_cost(engine, SYSTEM) == Decimal("4.00")
    assert set(import_history(engine)["id"]) == {first, usage}
    assert data_version(engine) != version
    [row] = audit.entries(engine, action="import.delete").itertuples()
    before = json.loads(row.before)
    assert (row.username, row.target) == ("olivia", f"import #{second}")
    assert (before["file_name"], before["cost_rows"], before["usage_rows"]) == ("b.csv", 2, 0)
    with pytest.raises(retention.RetentionError, match=f"no import #{second}"):
        retention.delete_import(engine, OWNER, second)


@pytest.mark.parametrize("who", [
    Principal("mark", "member"), Principal("rita", "reader"),
    Principal("sam", "owner", frozenset({"proj_a"}))], ids=["member", "reader", "scoped-owner"])
def test_only_an_unscoped_owner_may_delete(engine: Engine, tmp_path: Path,
                                           who: Principal) -> None:
    _months(engine, tmp_path)
    before = store_snapshot(engine)
    for attempt in (lambda: retention.purge_older_than(engine, who, 1, TODAY),
                    lambda: retention.purge_preview(engine, who, 1, TODAY),
                    lambda: retention.delete_import(engine, who, 1)):
        with pytest.raises(AccessDenied):
            attempt()
    assert store_snapshot(engine) == before
    assert audit.entries(engine, action="data.purge").empty


def test_a_purged_file_imported_again_comes_back(engine: Engine, tmp_path: Path) -> None:
    """The rerun guard (same file as the newest import: nothing to do) must not hide data a
    purge removed since."""
    content = cost_csv([cost_row(date(2026, 1, 5), "3.00")])
    _import(engine, tmp_path, "old.csv", content)
    retention.purge_older_than(engine, OWNER, 6, TODAY)
    assert total_cost(engine, SYSTEM) == 0
    [again] = import_sources(engine, [("old.csv", content)])
    assert again.ok and again.new == 1
    assert total_cost(engine, SYSTEM) == Decimal("3.00")


def _cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "analytics", *args, "--db", db_url], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_cli_purge_and_imports_need_yes(engine: Engine, db_url: str, tmp_path: Path) -> None:
    day = date.today() - timedelta(days=400)
    _import(engine, tmp_path, "old.csv", cost_csv([cost_row(day, "7.00")]))
    recent = _import(engine, tmp_path, "new.csv", cost_csv([cost_row(date.today(), "1.00")]))
    dry = _cli(db_url, "purge", "--older-than-months", "12")
    assert dry.returncode == 1 and "would delete" in dry.stderr and "1 cost rows" in dry.stderr
    assert total_cost(engine, SYSTEM) == Decimal("8.00")
    done = _cli(db_url, "purge", "--older-than-months", "12", "--yes", "--user", "ops")
    assert done.returncode == 0 and "deleted 0 usage rows and 1 cost rows" in done.stdout
    assert total_cost(engine, SYSTEM) == Decimal("1.00")
    listed = _cli(db_url, "imports", "list", "--format", "csv")
    assert listed.stdout.splitlines()[0].startswith("id,imported_at,imported_by,file_name")
    assert len(listed.stdout.splitlines()) == 3
    assert _cli(db_url, "imports", "delete", str(recent)).returncode == 1
    assert total_cost(engine, SYSTEM) == Decimal("1.00")
    gone = _cli(db_url, "imports", "delete", str(recent), "--yes")
    assert gone.returncode == 0 and total_cost(engine, SYSTEM) == 0
    missing = _cli(db_url, "imports", "delete", "999", "--yes")
    assert missing.returncode == 1 and "no import #999" in missing.stderr
    assert "Traceback" not in missing.stderr
    assert set(audit.entries(engine)["username"]) >= {"ops", "cli"}
