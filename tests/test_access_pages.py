"""Scoping in the UI (issue 8, item 1): a user limited to one project, on every page they can
open, never sees another project's name, id, keys or users anywhere in what is rendered —
not even when a URL carries another project's id in its query parameters."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from analytics import auth
from analytics.access import SYSTEM
from analytics.demo import DEMO_PROJECTS, load_demo
from analytics.org import label_project
from tests.conftest import ROOT
from tests.helpers import open_app
from ui.nav import PAGES

MINE = "proj_demoStaging000000002"
OTHERS = [p for p in DEMO_PROJECTS if p.project_id != MINE]
READABLE = [path for _, path, _, _, roles in PAGES
            if "reader" in roles and (ROOT / path).exists()]


def _secret_name(project_id: str) -> str:
    """A name no page could show by chance (the demo's names double as environments)."""
    return f"Qx{project_id[-5:]}Name"


@pytest.fixture(scope="module")
def scoped_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    from analytics.store import dispose_engine, get_engine

    url = f"sqlite:///{tmp_path_factory.mktemp('scoped') / 'store.db'}"
    engine: Engine = get_engine(url)
    load_demo(engine, days=60)
    for project in DEMO_PROJECTS:
        label_project(engine, SYSTEM, "openai", project.project_id,
                      _secret_name(project.project_id), project.environment)
    auth.add_user(engine, "sam", "Sam Scoped", "s@x.org", "scoped-pass-1", "reader", [MINE])
    yield url
    dispose_engine(url)


def _rendered(at: AppTest) -> str:
    """Every element's protobuf as text: markdown, tables (Arrow bytes), charts, options."""
    parts, stack = [], [at._tree]
    while stack:
        node = stack.pop()
        if getattr(node, "proto", None) is not None:
            parts.append(str(node.proto))
        stack.extend(getattr(node, "children", {}).values())
    return "\n".join(parts)


def _forbidden() -> list[str]:
    out = []
    for project in OTHERS:
        out += [project.project_id, _secret_name(project.project_id), *project.keys,
                *project.users]
    return out


@pytest.mark.parametrize("page", READABLE)
def test_a_scoped_user_sees_only_their_project_on_every_page(
        scoped_store: str, monkeypatch: pytest.MonkeyPatch, page: str) -> None:
    monkeypatch.setenv("BURNRATE_DB_URL", scoped_store)
    monkeypatch.setenv("BURNRATE_COOKIE_KEY", "test-only-key-" + "s" * 40)
    other = OTHERS[0].project_id  # a typed URL naming another project:
    at = open_app("sam", page, query={n: other for n in ("project", "project_id", "scope")})
    assert not at.exception, at.exception
    shown = _rendered(at)
    assert len(shown) > 200, "the page rendered something"
    if page in ("pages/overview.py", "pages/explore.py"):  # the check can see names at all
        assert _secret_name(MINE) in shown
    leaks = [text for text in _forbidden() if text in shown]
    assert not leaks, (page, leaks)
