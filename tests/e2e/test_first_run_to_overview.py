"""From a fresh server to the overview, in Debian's Chromium: setup token, first Owner,
login, upload of exports through the browser, the month's total on the overview."""

from __future__ import annotations

import json
import re
import time
from decimal import Decimal
from pathlib import Path

from tests.conftest import SHARED_SAMPLES
from tests.e2e.conftest import log_in, shot


def _exports(tmp: Path) -> tuple[list[Path], Decimal, str]:
    """The team's samples when ../shared is here, else generated exports of known truth."""
    folder = SHARED_SAMPLES / "openai-small"
    if folder.is_dir():
        truth = json.loads((folder / "truth.json").read_text())["truth"]
        files = sorted(folder.glob("*.csv"))
        return files, Decimal(str(truth["total_usd"])), "2026-09"
    from datetime import date

    from analytics.demo import simulate, write_exports

    org = simulate(days=30, end=date(2026, 9, 30), scale=0.2)
    files = write_exports(org, tmp / "exports", window_days=14, overlap_days=4)
    return files, sum(org.truth_by_day().values()), "2026-09"


def _wait_for_token(server, timeout: float = 30) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = re.search(r"setup token: (\S+)", server.output())
        if found:
            return found.group(1)
        time.sleep(0.3)
    raise AssertionError("no setup token printed:\n" + server.output())


def _wait_streamlit(page):
    page.wait_for_selector("[data-testid='stApp']")
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000)


def test_first_run_login_upload_overview(server, browser_page, tmp_path):
    page = browser_page
    files, total, _month = _exports(tmp_path)
    page.goto(server.url)
    page.get_by_text("Welcome to Burnrate").wait_for()
    shot(page, "01_first_run")
    token = _wait_for_token(server)

    page.get_by_role("textbox", name="Setup token").fill(token)
    page.get_by_label("Username").fill("finance")
    page.get_by_label("Full name").fill("Fiona Finance")
    page.get_by_label("Email").fill("fiona@example.com")
    page.get_by_role("textbox", name="Password (at least 8 characters)").fill("correct-horse-9")
    page.get_by_role("textbox", name="Password again").fill("correct-horse-9")
    page.get_by_role("button", name="Create Owner").click()

    page.get_by_role("button", name="Log in").wait_for()
    page.get_by_text("Welcome to Burnrate").wait_for(state="detached")
    log_in(page, "finance", "correct-horse-9")
    page.get_by_text("No data yet").wait_for()
    shot(page, "02_logged_in")

    page.get_by_role("link", name="Import").click()
    page.get_by_text("Import exports").wait_for()
    page.locator("input[type=file]").set_input_files([str(f) for f in files])
    page.get_by_text("What was recognised").wait_for(timeout=60_000)
    button = page.get_by_role("button", name=re.compile(r"Import \d+ file"))
    shot(page, "03_import_preview")
    button.click()
    page.get_by_text("new rows").first.wait_for(timeout=120_000)
    shot(page, "04_import_done")

    page.get_by_role("link", name="Overview").click()
    expected = f"${total:,.2f}"
    page.get_by_text(expected).first.wait_for(timeout=60_000)
    page.get_by_text("Daily spend by project").wait_for()
    shot(page, "05_overview")

    page.get_by_role("link", name="Explore").click()
    page.get_by_text("Explore spend").wait_for()
    page.get_by_text("Download CSV").wait_for()
    shot(page, "06_explore")

    page.get_by_role("link", name="Settings").click()
    page.get_by_role("heading", name="Settings").wait_for()
    shot(page, "07_settings")
