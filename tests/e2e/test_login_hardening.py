"""Login cookies against a real server in Chromium: only a cookie signed with the server's own
generated key logs in; forged, alg:none, expired, garbage cookies and a removed user's cookie
all end at the login form, without an exception on the page."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from analytics import auth
from analytics.store import dispose_engine, get_engine


def _alg_none(claims: dict) -> str:
    def part(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def _wait(page) -> None:  # noqa: ANN001
    page.wait_for_selector("[data-testid='stApp']")
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000)


@pytest.fixture
def with_users(server):  # noqa: ANN001, ANN201
    url = f"sqlite:///{server.data / 'store.db'}"
    engine = get_engine(url)
    auth.add_user(engine, "olivia", "Olivia Owner", "o@x.org", "owner-pass-1", "owner")
    auth.add_user(engine, "gone", "Gone User", "g@x.org", "gone-pass-1", "reader")
    yield server, engine
    dispose_engine(url)


def _visit_with(page, server, token: str) -> None:  # noqa: ANN001
    page.context.clear_cookies()
    page.context.add_cookies([{"name": auth.COOKIE_NAME, "value": token,
                               "url": server.url}])
    page.goto(server.url)
    _wait(page)


def test_cookies(with_users, browser_page) -> None:  # noqa: ANN001
    server, engine = with_users
    page = browser_page
    page.goto(server.url)  # the first visit generates the cookie key
    page.get_by_role("button", name="Log in").wait_for()
    key = (server.data / "cookie_key").read_text().strip()
    soon = time.time() + 3600
    gone = jwt.encode({"username": "gone", "exp_date": soon}, key, algorithm="HS256")
    auth.remove_user(engine, "gone")
    bad = {
        "forged": jwt.encode({"username": "olivia", "exp_date": soon}, "guess", algorithm="HS256"),
        "alg-none": _alg_none({"username": "olivia", "exp_date": soon}),
        "expired": jwt.encode({"username": "olivia", "exp_date": time.time() - 60}, key,
                              algorithm="HS256"),
        "garbage": "%%%not-a-token%%%",
        "removed-user": gone,
    }
    for name, token in bad.items():
        _visit_with(page, server, token)
        page.get_by_role("button", name="Log in").wait_for()
        assert page.locator("[data-testid='stException']").count() == 0, name
        assert page.get_by_text("Olivia Owner").count() == 0, name
    good = jwt.encode({"username": "olivia", "exp_date": soon}, key, algorithm="HS256")
    _visit_with(page, server, good)
    page.get_by_text("Olivia Owner").first.wait_for()
    assert page.get_by_role("button", name="Log in").count() == 0
    assert "Traceback" not in server.output()
