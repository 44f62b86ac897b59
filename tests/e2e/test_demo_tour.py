"""Every page of the app on the demo organisation, in Debian's Chromium, as an Owner: the
demo button works, no page shows an error, and each page is saved as a screenshot."""

from __future__ import annotations

import re

from analytics import auth
from analytics.store import get_engine
from tests.e2e.conftest import log_in, shot
from ui.nav import PAGES, ROOT


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")


def test_every_page_on_the_demo_org(server, browser_page):
    engine = get_engine(f"sqlite:///{server.data / 'store.db'}")
    auth.add_user(engine, "owner", "Olga Owner", "o@example.com", "owner-pass-12", "owner")
    page = browser_page
    page.goto(server.url)
    page.get_by_role("button", name="Log in").wait_for()
    log_in(page, "owner", "owner-pass-12")
    page.get_by_role("link", name="Import").click()
    page.get_by_role("button", name="Load the demo organisation").click()
    page.get_by_text("Demo loaded").wait_for(timeout=180_000)

    for _, path, title, _, roles in PAGES:
        if "owner" not in roles or not (ROOT / path).exists():
            continue
        page.get_by_role("link", name=title, exact=True).click()
        page.locator("h1").first.wait_for(timeout=120_000)
        page.wait_for_timeout(1500)  # let the script start if a rerun is pending
        page.locator("[data-testid='stStatusWidget']").wait_for(state="detached",
                                                                 timeout=180_000)
        assert page.locator("[data-testid='stException']").count() == 0, title
        shot(page, f"demo_{_slug(title)}")
