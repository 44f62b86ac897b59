"""The Forecast & budgets page renders for an Owner and a Reader; only the Owner can edit."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from analytics import auth
from analytics.access import SYSTEM
from analytics.budget_store import list_budgets, save_budget
from analytics.budgets import Budget
from analytics.demo import load_demo
from tests.helpers import open_app

APP = str(Path(__file__).resolve().parent.parent / "app.py")
PAGE = "pages/forecast.py"


@pytest.fixture(scope="module")
def page_store(tmp_path_factory):
    """One demo store for the module: each render forecasts six scopes, so it is shared."""
    from analytics.store import dispose_engine, get_engine

    url = f"sqlite:///{tmp_path_factory.mktemp('forecast_page') / 'store.db'}"
    engine = get_engine(url)
    load_demo(engine, days=75)
    auth.add_user(engine, "olivia", "Olivia Owner", "o@example.com", "owner-pass-1", "owner")
    auth.add_user(engine, "rita", "Rita Reader", "r@example.com", "reader-pass-1", "reader")
    save_budget(engine, SYSTEM, Budget("Org monthly", Decimal("100")))  # crossed already
    yield url, engine
    dispose_engine(url)


def _open(page_store, monkeypatch, username: str) -> AppTest:
    url, _ = page_store
    monkeypatch.setenv("BURNRATE_DB_URL", url)
    monkeypatch.setenv("BURNRATE_COOKIE_KEY", "test-only-key-" + "x" * 40)
    at = open_app(username, PAGE)
    assert not at.exception, at.exception
    return at


def _chart_json(at: AppTest) -> list[str]:
    return [c.proto.spec for c in at.get("plotly_chart")]


def test_owner_sees_chart_budget_table_and_editors(page_store, monkeypatch):
    at = _open(page_store, monkeypatch, "olivia")
    assert at.title[0].value == "Forecast & budgets"
    charts = _chart_json(at)
    assert len(charts) == 1 + 5, "the org chart and one per demo project"
    org = charts[0]
    for trace in ("Actual to date", "80% band", "Forecast", "Budget $100.00"):
        assert trace in org, trace
    assert '"tickprefix":"$"' in org
    assert "Org monthly" in at.dataframe[0].value["budget"].tolist()
    assert any("Org monthly" in e.value for e in at.error), "the crossed budget alerts"
    labels = [t.label for t in at.text_input]
    assert "Name" in labels and "Webhook URL" in labels


def test_reader_sees_everything_but_no_editors(page_store, monkeypatch):
    at = _open(page_store, monkeypatch, "rita")
    assert len(_chart_json(at)) == 6
    assert "Budget $100.00" in _chart_json(at)[0]
    assert "Org monthly" in at.dataframe[0].value["budget"].tolist()
    labels = [t.label for t in at.text_input]
    assert "Name" not in labels and "Webhook URL" not in labels
    assert not [b for b in at.button if "Check budgets" in b.label]
    assert any("Only an Owner" in c.value for c in at.caption)


def test_owner_saves_a_budget_through_the_form(page_store, monkeypatch):
    at = _open(page_store, monkeypatch, "olivia")
    name = next(t for t in at.text_input if t.label == "Name")
    amount = next(t for t in at.text_input if t.label == "Amount per period (USD)")
    name.input("Quarterly org")
    amount.input("9,000")
    next(s for s in at.selectbox if s.label == "Period").select("quarter")
    next(b for b in at.button if b.label == "Save budget").click().run()
    assert not at.exception, at.exception
    _, engine = page_store
    saved = {b.name: b for b in list_budgets(engine, SYSTEM)}
    assert saved["Quarterly org"].amount == Decimal("9000")
    assert saved["Quarterly org"].kind == "quarter"
    assert [t.pct for t in saved["Quarterly org"].thresholds] == [50, 75, 90]
