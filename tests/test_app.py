"""Every page renders for every role, navigation follows the role, scoping holds in the UI."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from analytics import auth
from analytics.demo import load_demo
from tests.helpers import open_app
from ui.nav import PAGES, ROOT

APP = str(Path(__file__).resolve().parent.parent / "app.py")


@pytest.fixture
def demo_store(engine, db_url, monkeypatch):
    monkeypatch.setenv("BURNRATE_DB_URL", db_url)
    monkeypatch.setenv("BURNRATE_COOKIE_KEY", "test-only-key-" + "x" * 40)
    load_demo(engine, days=120)
    auth.add_user(engine, "olivia", "Olivia Owner", "o@example.com", "owner-pass-1", "owner")
    auth.add_user(engine, "mark", "Mark Member", "m@example.com", "member-pass-1", "member")
    auth.add_user(engine, "rita", "Rita Reader", "r@example.com", "reader-pass-1", "reader")
    auth.add_user(engine, "sam", "Sam Scoped", "s@example.com", "scoped-pass-1", "reader",
                  ["proj_demoStaging000000002"])
    return engine


def _logged_in(username: str) -> AppTest:
    return open_app(username)


def _page_titles(at: AppTest) -> list[str]:
    return [t.value for t in at.title]


@pytest.mark.parametrize("user,role", [("olivia", "owner"), ("mark", "member"),
                                       ("rita", "reader"), ("sam", "reader")])
def test_navigation_follows_role(demo_store, user, role):
    declared = {title for _, path, title, _, roles in PAGES
                if role in roles and (ROOT / path).exists()}
    reachable = set()
    for _, path, title, _, _ in PAGES:
        if not (ROOT / path).exists():
            continue
        at = _logged_in(user)
        try:
            at.switch_page(path).run()
        except ValueError as exc:  # AppTest: the page is not registered in st.navigation
            assert "Could not find a navigation page" in str(exc)
            continue
        assert not at.exception, (path, at.exception)
        reachable.add(title)
    assert reachable == declared
    if role == "reader":
        assert not reachable & {"Import", "Settings", "Audit log", "Sync"}
    if role == "member":
        assert "Import" in reachable and "Settings" not in reachable


@pytest.mark.parametrize("page", [p for _, p, _, _, _ in PAGES if (ROOT / p).exists()])
def test_every_page_renders_for_owner(demo_store, page):
    at = _logged_in("olivia")
    at.switch_page(page).run()
    assert not at.exception, at.exception
    assert at.title, "every page has a title"


def test_scoped_user_sees_only_their_project(demo_store):
    at = _logged_in("sam")
    assert not at.exception
    texts = " ".join(str(m.value) for m in at.markdown) + " ".join(
        str(c.proto) for c in at.get("plotly_chart"))
    assert "Staging" in texts
    for other in ("Production", "Development", "Analytics", "Marketing"):
        assert other not in texts, other


def test_login_form_and_lockout(demo_store):
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    for _ in range(5):
        at.text_input[0].input("rita")
        at.text_input[1].input("wrong-password")
        at.button[0].click().run()
    assert any("Too many failed attempts" in e.value for e in at.error)
    at.text_input[0].input("rita")
    at.text_input[1].input("reader-pass-1")
    at.button[0].click().run()
    assert any("Too many failed attempts" in e.value for e in at.error), \
        "the right password is refused while locked"


def test_first_run_needs_the_printed_token(engine, db_url, monkeypatch, capsys):
    monkeypatch.setenv("BURNRATE_DB_URL", db_url)
    monkeypatch.setenv("BURNRATE_COOKIE_KEY", "test-only-key-" + "y" * 40)
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert at.title[0].value == "Welcome to Burnrate"
    at.text_input[0].input("not-the-token")
    for i, v in enumerate(["boss", "Boss", "b@example.com", "long-password", "long-password"],
                          start=1):
        at.text_input[i].input(v)
    at.button[0].click().run()
    assert any("not valid" in e.value for e in at.error)
    assert auth.count_users(engine) == 0
