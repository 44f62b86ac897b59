"""The Insights and API keys pages on the planted store: findings ranked with their dollars,
notes written by Members only, scoping held in the UI."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from analytics import auth
from analytics.access import SYSTEM
from analytics.keys import note_history
from analytics.store import dispose_engine, get_engine
from tests.helpers import open_app
from tests.test_insights import (
    END,
    START,
    Bucket,
    _at,
    _days,
    clean_app,
    load,
    load_planted,
    planted,
)

APP = str(Path(__file__).resolve().parent.parent / "app.py")


@pytest.fixture(scope="module")
def users(tmp_path_factory: pytest.TempPathFactory):
    """The planted store, built once for the module, with one user of each kind."""
    folder = tmp_path_factory.mktemp("pages")
    url = f"sqlite:///{folder / 'store.db'}"
    planted_store = get_engine(url)
    load_planted(planted_store, folder)
    auth.add_user(planted_store, "olivia", "Olivia Owner", "o@x.com", "owner-pass-1", "owner")
    auth.add_user(planted_store, "mark", "Mark Member", "m@x.com", "member-pass-1", "member")
    auth.add_user(planted_store, "rita", "Rita Reader", "r@x.com", "reader-pass-1", "reader")
    auth.add_user(planted_store, "sam", "Sam Scoped", "s@x.com", "scoped-pass-1", "reader",
                  ["proj_legacy"])
    yield planted_store
    dispose_engine(url)


@pytest.fixture
def planted_app(users, monkeypatch):
    monkeypatch.setenv("BURNRATE_DB_URL", str(users.url))
    monkeypatch.setenv("BURNRATE_COOKIE_KEY", "test-only-key-" + "x" * 40)
    return users


def _page(username: str, page: str) -> AppTest:
    at = open_app(username, page)
    assert not at.exception, at.exception
    return at


def test_insights_ranked_by_dollars_with_evidence(planted_app):
    at = _page("olivia", "pages/insights.py")
    labels = [e.label for e in at.expander]
    assert len(labels) == 8
    assert labels[0].startswith("**\\$115/month** · Model choice")
    assert any("Runaway spend" in label and "key_dev" in label for label in labels)
    assert labels[-1].startswith("**no direct cost**")
    # Closed findings draw no chart or table (dozens of them took seconds to draw).
    assert not at.get("plotly_chart") and not at.dataframe
    assert [d.label for d in at.get("download_button")] == ["Download findings (CSV)"]
    for i in range(len(labels)):  # open every finding, as a click on each would
        at.session_state[f"finding_{START}_{END}_{i}"] = True
    at.run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) >= 7 and len(at.dataframe) == 8
    assert at.dataframe[0].value["requests"].sum() == 9000  # the gpt-4 rows of proj_legacy


def test_an_import_elsewhere_is_analysed_at_once(tmp_path, monkeypatch):
    """The cached report follows the store's data version: an import from the CLI (which
    cannot clear the app's cache) shows up on the next visit."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = get_engine(url)
    load(store, tmp_path, [clean_app()])
    auth.add_user(store, "olivia", "Olivia Owner", "o@x.com", "owner-pass-1", "owner")
    monkeypatch.setenv("BURNRATE_DB_URL", url)
    monkeypatch.setenv("BURNRATE_COOKIE_KEY", "test-only-key-" + "x" * 40)
    try:
        assert not _page("olivia", "pages/insights.py").expander
        (tmp_path / "later").mkdir()
        load(store, tmp_path / "later", [[b for b in planted()[0] if b.project == "proj_legacy"]])
        labels = [e.label for e in _page("olivia", "pages/insights.py").expander]
        assert len(labels) == 1 and "proj_legacy still runs legacy gpt-4" in labels[0]
    finally:
        dispose_engine(url)


def test_many_findings_are_listed_a_page_at_a_time(tmp_path, monkeypatch):
    """30 projects on legacy gpt-4: 30 findings, drawn 25 to a page, largest first."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = get_engine(url)
    load(store, tmp_path, [[Bucket(_at(day), 86_400, f"proj_{p:02d}", f"key_{p:02d}",
                                   "gpt-4-0613", 100 + p, 1000, 0, 200)
                            for p in range(30) for day in _days(START, END)]])
    auth.add_user(store, "olivia", "Olivia Owner", "o@x.com", "owner-pass-1", "owner")
    monkeypatch.setenv("BURNRATE_DB_URL", url)
    monkeypatch.setenv("BURNRATE_COOKIE_KEY", "test-only-key-" + "x" * 40)
    try:
        at = _page("olivia", "pages/insights.py")
        assert at.metric[0].value == "30"
        first = [e.label for e in at.expander]
        assert len(first) == 25 and "proj_29" in first[0]  # the most requests saves most
        at.number_input[0].set_value(2).run()
        assert not at.exception, at.exception
        second = [e.label for e in at.expander]
        assert len(second) == 5 and "proj_00" in second[-1]
    finally:
        dispose_engine(url)


def test_scoped_reader_sees_only_their_findings(planted_app):
    at = _page("sam", "pages/insights.py")
    labels = [e.label for e in at.expander]
    assert len(labels) == 1 and "proj_legacy" in labels[0]


def test_member_notes_a_key(planted_app):
    at = _page("mark", "pages/keys.py")
    at.selectbox[0].select("key_legacy (proj_legacy)").run()
    at.text_input[0].input("Lee")
    at.text_input[1].input("legacy-summariser")
    at.button[0].click().run()
    assert not at.exception, at.exception
    notes = note_history(planted_app, SYSTEM, "key_legacy")
    assert notes[["owner", "service", "written_by"]].values.tolist() == [
        ["Lee", "legacy-summariser", "mark"]]
    assert any("**Update legacy-summariser to the new key**" in m.value for m in at.markdown)


def test_reader_sees_keys_but_no_note_form(planted_app):
    at = _page("rita", "pages/keys.py")
    assert not at.text_input and not at.button
    assert any("no request for 30 days" in str(w.value) for w in at.warning)
    assert at.metric[1].value == "1"  # key_old, 45 days idle
