"""Page benchmark (issue 9): every page of ``ui.nav.PAGES`` rendered for an Owner on a large
store, through Streamlit's ``AppTest`` (the script runs in this process, no browser).

    .venv/bin/python -m bench.page_bench [--rows 100000,1000000] [--pg ADMIN_URL]

Uses the stores ``bench.query_bench`` builds and keeps in ``bench/out/``. Each page is opened
from a fresh logged-in session (as ``tests/test_app.py`` does); the time is that of
``at.switch_page(path).run()`` alone. The first visit is made with every cache emptied
(``st.cache_data`` and the forecast cache), as right after an import: that is the *cold*
figure. Then three more visits, each from a new session with the caches as the first left
them; their median is the figure judged against the target (every page under 1 s).

The browser's own work (sending and drawing the elements) is not in these numbers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from bench.import_bench import machine, publish
from bench.query_bench import (
    OUT,
    REPEATS,
    add_arguments,
    each_store,
)

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
TARGET_PAGE_S = 1.0
OWNER = "bench_owner"
TIMEOUT_S = 900


@dataclass
class PageTiming:
    backend: str
    rows: int
    page: str
    cold_s: float
    warm_s: float
    note: str = ""

    @property
    def verdict(self) -> str:
        return "met" if self.warm_s < TARGET_PAGE_S else "MISSED"


def _ensure_owner(url: str) -> None:
    from analytics import auth
    from analytics.store import get_engine

    engine = get_engine(url)
    if auth.get_user(engine, OWNER) is None:
        auth.add_user(engine, OWNER, "Bench Owner", "bench@example.com", "bench-owner-pass",
                      "owner")


def _visit(page: str) -> tuple[float, str]:
    """Seconds to switch a fresh Owner session to ``page``, and any exception it raised."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    at.session_state["authentication_status"] = True
    at.session_state["username"] = OWNER
    at.session_state["logout"] = False
    at.run()
    start = time.perf_counter()
    at.switch_page(page).run()
    seconds = time.perf_counter() - start
    problem = "; ".join(str(e.value)[:120] for e in at.exception)
    return seconds, problem


def _clear_caches() -> None:
    import streamlit as st

    from analytics import forecasting, memo

    st.cache_data.clear()
    st.cache_resource.clear()  # the insights report is kept there, per data version
    forecasting.clear_cache()
    memo.clear_all()


def bench_pages(backend: str, rows: int, url: str) -> list[PageTiming]:
    from analytics.store import dispose_engine
    from ui.nav import PAGES

    os.environ["BURNRATE_DB_URL"] = url
    os.environ.setdefault("BURNRATE_COOKIE_KEY", "bench-only-key-" + "z" * 40)
    _ensure_owner(url)
    dispose_engine(url)
    results: list[PageTiming] = []
    for _, page, _, _, _ in PAGES:
        if not (ROOT / page).exists():
            continue
        _clear_caches()
        cold, problem = _visit(page)
        warm = [_visit(page)[0] for _ in range(REPEATS)]
        t = PageTiming(backend, rows, page, cold, statistics.median(warm),
                       f"exception: {problem}" if problem else "")
        print(f"  {backend:10} {rows:>9,} {page:24} cold {t.cold_s:7.2f} s  "
              f"warm {t.warm_s:7.2f} s  {t.verdict}  {t.note}", flush=True)
        results.append(t)
    return results


def markdown(results: list[PageTiming], context: list[str]) -> str:
    head = ("| backend | rows | page | cold s | warm median s | verdict (< 1 s warm) | note |\n"
            "|---|---:|---|---:|---:|---|---|")
    body = [f"| {t.backend} | {t.rows:,} | {t.page} | {t.cold_s:.2f} | {t.warm_s:.2f} | "
            f"{t.verdict} | {t.note} |" for t in results]
    tail = []
    for backend, rows in sorted({(t.backend, t.rows) for t in results}):
        mine = [t for t in results if t.backend == backend and t.rows == rows]
        top = sorted(mine, key=lambda t: t.cold_s, reverse=True)[:3]
        missed = [t.page for t in mine if t.verdict == "MISSED"]
        tail.append(f"- **{backend}, {rows:,} rows**: slowest cold "
                    + ", ".join(f"{t.page} {t.cold_s:.2f} s" for t in top) + "; target "
                    + (f"MISSED: {', '.join(missed)}" if missed else "met by every page"))
    return "\n".join(["# Page benchmark", "", *context, "", head, *body, "", *tail, ""])


def run(rows_list: list[int], pg_url: str | None, out: Path = OUT) -> list[PageTiming]:
    """Render every page on each store, write ``pages.md``."""
    out.mkdir(parents=True, exist_ok=True)
    context = [f"{machine()}; Streamlit AppTest, Owner; cold = first visit with caches "
               f"emptied, warm = median of {REPEATS} later visits from new sessions."]
    results = each_store(rows_list, pg_url, out, bench_pages)
    publish(out, "pages.md", markdown(results, context))
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    run(args.rows, args.pg)


if __name__ == "__main__":
    main()
