"""Page benchmark (issue 9): every page of ``ui.nav.PAGES`` rendered for an Owner on a large
store, through Streamlit's ``AppTest`` (the script runs in this process, no browser).

    .venv/bin/python -m bench.page_bench [--rows 100000,1000000] [--pg ADMIN_URL]

Uses a copy of each store ``bench.query_bench`` builds and keeps in ``bench/out/`` (the copy
takes this bench's imports; the kept store stays as built). Each page is opened from a fresh
logged-in session (as ``tests/test_app.py`` does); the time is that of
``at.switch_page(path).run()`` alone. The first visit is made with every cache emptied
(``st.cache_data``, ``memo`` and the forecast cache): that is the *cold* figure, what the
first visit after an import cost before results were refreshed in the background. Then three
more visits, each from a new session with the caches as the first left them; their median is
the figure judged against the target (every page under 1 s). Then the next day of usage and
its cost export (a day's share of the store's rows) are imported, the background refresh the
Import page starts is waited for (*refresh*: how long after the import the pages are warm),
and the page is visited once more: *after import*, what a user sees then.

The browser's own work (sending and drawing the elements) is not in these numbers.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
import time
from contextlib import closing
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, create_engine, make_url, text

from bench.gen_usage import DEFAULT_BUCKETS, write_usage_export
from bench.import_bench import machine, publish
from bench.query_bench import (
    OUT,
    REPEATS,
    add_arguments,
    each_store,
    write_cost_export,
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
    after_import_s: float  # the visit after an import, once the background refresh ended
    refresh_s: float  # the background refresh after that import
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


def _scratch_copy(backend: str, url: str) -> str:
    """A fresh copy of the kept store, for the imports this bench makes."""
    from analytics.store import dispose_engine

    dispose_engine(url)  # PostgreSQL copies only a template nobody is connected to
    kept = make_url(url)
    if backend == "sqlite":
        target = Path(str(kept.database)).with_name(f"pages_{Path(str(kept.database)).name}")
        for leftover in (target, target.with_name(target.name + "-wal"),
                         target.with_name(target.name + "-shm")):
            leftover.unlink(missing_ok=True)
        with closing(sqlite3.connect(str(kept.database))) as source, \
                closing(sqlite3.connect(target)) as copy:
            source.backup(copy)
        return f"sqlite:///{target}"
    name = f"{kept.database}_pages"
    admin = create_engine(kept.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{kept.database}"'))
    admin.dispose()
    return kept.set(database=name).render_as_string(hide_password=False)


def _drop_copy(backend: str, url: str) -> None:
    from analytics.store import dispose_engine

    dispose_engine(url)
    copy = make_url(url)
    if backend == "sqlite":
        for path in (Path(str(copy.database)), Path(f"{copy.database}-wal"),
                     Path(f"{copy.database}-shm")):
            path.unlink(missing_ok=True)
        return
    admin = create_engine(copy.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{copy.database}" WITH (FORCE)'))
    admin.dispose()


def _import_next_day(engine: Engine, rows: int) -> float:
    """Import the day after the newest one (usage and its cost export, a day's share of the
    store's rows) as the Import page does, and wait for the background refresh it starts;
    the refresh's seconds."""
    from analytics.access import SYSTEM
    from analytics.ingest import import_sources
    from analytics.queries import data_range
    from analytics.refresh import refresh, wait_idle

    day = data_range(engine, SYSTEM)[1] + timedelta(days=1)
    with tempfile.TemporaryDirectory(prefix="burnrate-page-bench-") as tmp:
        usage = write_usage_export(Path(tmp) / f"completions_usage_{day}.csv",
                                   max(1, rows // DEFAULT_BUCKETS["day"]), buckets=1, end=day)
        cost = write_cost_export(usage, Path(tmp) / f"cost_{day}.csv")
        results = import_sources(engine, [(p.name, p) for p in (usage, cost)], user=OWNER)
    if not all(r.ok for r in results):
        raise SystemExit(f"import of the next day failed: {[r.error for r in results]}")
    start = time.perf_counter()
    refresh(engine)
    if not wait_idle(TIMEOUT_S):
        raise SystemExit(f"the background refresh took over {TIMEOUT_S} s")
    return time.perf_counter() - start


def bench_pages(backend: str, rows: int, kept_url: str) -> list[PageTiming]:
    from analytics.store import dispose_engine, get_engine
    from ui.nav import PAGES

    url = _scratch_copy(backend, kept_url)
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
        refresh_s = _import_next_day(get_engine(url), rows)
        after, after_problem = _visit(page)
        problems = "; ".join(p for p in (problem, after_problem) if p)
        t = PageTiming(backend, rows, page, cold, statistics.median(warm), after, refresh_s,
                       f"exception: {problems}" if problems else "")
        print(f"  {backend:10} {rows:>9,} {page:24} cold {t.cold_s:7.2f} s  "
              f"warm {t.warm_s:7.2f} s  after import {t.after_import_s:7.2f} s "
              f"(refresh {t.refresh_s:6.2f} s)  {t.verdict}  {t.note}", flush=True)
        results.append(t)
    _drop_copy(backend, url)
    return results


def markdown(results: list[PageTiming], context: list[str]) -> str:
    head = ("| backend | rows | page | cold s | warm median s | after import s | refresh s | "
            "verdict (< 1 s warm) | note |\n|---|---:|---|---:|---:|---:|---:|---|---|")
    body = [f"| {t.backend} | {t.rows:,} | {t.page} | {t.cold_s:.2f} | {t.warm_s:.2f} | "
            f"{t.after_import_s:.2f} | {t.refresh_s:.2f} | {t.verdict} | {t.note} |"
            for t in results]
    tail = []
    for backend, rows in sorted({(t.backend, t.rows) for t in results}):
        mine = [t for t in results if t.backend == backend and t.rows == rows]
        cold = sorted(mine, key=lambda t: t.cold_s, reverse=True)[:3]
        after = sorted(mine, key=lambda t: t.after_import_s, reverse=True)[:3]
        missed = [t.page for t in mine if t.verdict == "MISSED"]
        tail.append(f"- **{backend}, {rows:,} rows**: slowest cold "
                    + ", ".join(f"{t.page} {t.cold_s:.2f} s" for t in cold)
                    + "; slowest after an import, refreshed "
                    + ", ".join(f"{t.page} {t.after_import_s:.2f} s" for t in after)
                    + f" (longest refresh {max(t.refresh_s for t in mine):.2f} s); target "
                    + (f"MISSED: {', '.join(missed)}" if missed else "met by every page"))
    return "\n".join(["# Page benchmark", "", *context, "", head, *body, "", *tail, ""])


def run(rows_list: list[int], pg_url: str | None, out: Path = OUT) -> list[PageTiming]:
    """Render every page on each store, write ``pages.md``."""
    out.mkdir(parents=True, exist_ok=True)
    context = [f"{machine()}; Streamlit AppTest, Owner; cold = first visit with caches "
               f"emptied, warm = median of {REPEATS} later visits from new sessions, after "
               "import = the next visit after the next day was imported and the background "
               "refresh (refresh s) ended."]
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
