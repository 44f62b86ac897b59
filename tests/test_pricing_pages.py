"""Price book, Reconcile and What-if pages: they render for every role; only the roles that
may write see the add-price and save-scenario controls."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from analytics import auth
from analytics.access import SYSTEM
from analytics.demo import load_demo
from analytics.pricing import MigrationScenario
from analytics.scenarios import list_scenarios, save_scenario
from tests.helpers import open_app

APP = str(Path(__file__).resolve().parent.parent / "app.py")
PAGES = ("pages/pricing.py", "pages/reconcile.py", "pages/whatif.py")
USERS = {"owner": "olivia", "member": "mark", "reader": "rita"}


@pytest.fixture
def demo_store(engine, db_url, monkeypatch):
    monkeypatch.setenv("BURNRATE_DB_URL", db_url)
    monkeypatch.setenv("BURNRATE_COOKIE_KEY", "test-only-key-" + "x" * 40)
    load_demo(engine, days=60)
    auth.add_user(engine, "olivia", "Olivia Owner", "o@example.com", "owner-pass-1", "owner")
    auth.add_user(engine, "mark", "Mark Member", "m@example.com", "member-pass-1", "member")
    auth.add_user(engine, "rita", "Rita Reader", "r@example.com", "reader-pass-1", "reader")
    return engine


def _open(role: str, page: str) -> AppTest:
    at = open_app(USERS[role], page)
    assert not at.exception, at.exception
    return at


def _buttons(at: AppTest) -> list[str]:
    return [b.label for b in at.button] + [b.label for b in at.get("form_submit_button")]


@pytest.mark.slow
@pytest.mark.parametrize("role", list(USERS))
@pytest.mark.parametrize("page", PAGES)
def test_page_renders_for_every_role(demo_store, role, page):
    at = _open(role, page)
    assert at.title, "every page has a title"


@pytest.mark.slow
@pytest.mark.parametrize("role", list(USERS))
def test_only_owner_can_add_prices(demo_store, role):
    at = _open(role, "pages/pricing.py")
    assert ("Add price" in _buttons(at)) == (role == "owner")


@pytest.mark.slow
@pytest.mark.parametrize("role", list(USERS))
def test_readers_cannot_save_or_delete_scenarios(demo_store, role):
    save_scenario(demo_store, SYSTEM, MigrationScenario("gpt-4o", "gpt-4.1", 0.5), "kept")
    at = _open(role, "pages/whatif.py")
    at.selectbox[1].select("gpt-5-mini").run()  # a complete scenario: results are shown
    assert not at.exception, at.exception
    assert any(m.label == "Under the scenario" for m in at.metric)
    labels = _buttons(at)
    assert ("Save scenario" in labels) == (role != "reader")
    assert ("Delete" in labels) == (role != "reader")
    assert "kept" in at.dataframe[-1].value["name"].tolist(), "everyone sees saved scenarios"


@pytest.mark.slow
def test_member_saves_the_migration_shown(demo_store):
    at = _open("member", "pages/whatif.py")
    at.selectbox[1].select("gpt-5-mini").run()  # "Move traffic of" gpt-4o -> gpt-5-mini
    assert not at.exception, at.exception
    assert any("Difference" in m.label for m in at.metric)
    at.text_input[0].input("4o to mini")
    next(b for b in at.get("form_submit_button") if b.label == "Save scenario").click().run()
    assert not at.exception, at.exception
    saved = list_scenarios(demo_store)
    assert list(saved["name"]) == ["4o to mini"]
    assert saved["description"][0].startswith("Move 70% of gpt-4o to gpt-5-mini")


@pytest.mark.slow
def test_price_list_mode_waits_for_an_edited_price(demo_store):
    at = _open("reader", "pages/whatif.py")
    at.radio[0].set_value("Another price list").run()
    assert not at.exception, at.exception
    assert any("Change at least one price" in i.value for i in at.info)
    assert not [m for m in at.metric if m.label == "Under the scenario"]
