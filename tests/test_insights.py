"""Insights on generated exports with planted problems, each found with hand-computed dollars;
a clean organisation (weekly seasonality, growth, noise) yields no finding at all.

The planted store is written as OpenAI usage CSVs (daily, hourly and minute buckets) and
imported through the real importers. Prices used by hand (per 1M tokens, data/prices.csv):
gpt-4 30/60; gpt-4.1 2/8; gpt-4.1-mini 0.40 (cached 0.10)/1.60; gpt-5 1.25 (cached 0.125)/10;
gpt-5-mini 0.25/2; gpt-4o-mini 0.15/0.60.
"""

from __future__ import annotations

import csv
import json
import math
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine

from analytics import anomaly
from analytics.access import SYSTEM, Principal
from analytics.cli import main
from analytics.demo import USAGE_HEADER
from analytics.ingest import import_sources
from analytics.insights import find_insights, findings_frame
from analytics.org import label_project
from analytics.store import dispose_engine, get_engine

END = date(2026, 11, 20)
START = END - timedelta(days=89)  # a 90-day window
HISTORY = START - timedelta(days=35)  # earlier days give the spike detector its baseline
STORM_DAY = date(2026, 11, 18)
STALE_LAST = END - timedelta(days=45)


@dataclass(frozen=True)
class Bucket:
    start: datetime
    seconds: int
    project: str
    key: str
    model: str
    requests: int
    input: int  # per request
    cached: int  # per request
    output: int  # per request
    batch: bool = False


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _at(day: date, hour: int = 0, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), UTC)


def write_usage(path: Path, buckets: list[Bucket]) -> Path:
    """Buckets as OpenAI's usage CSV (unix seconds, ISO twins, float counts)."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(USAGE_HEADER)
        for b in buckets:
            stop = b.start + timedelta(seconds=b.seconds)
            inp, cached, output = b.requests * b.input, b.requests * b.cached, \
                b.requests * b.output
            out.writerow([
                int(b.start.timestamp()), int(stop.timestamp()), b.start.isoformat(),
                stop.isoformat(), b.project, f"{b.requests}.0", "user-test", b.key, b.model,
                str(b.batch), "default", f"{inp}.0", f"{output}.0", f"{cached}.0",
                f"{inp - cached}.0", f"{inp - cached}.0", f"{output}.0", f"{cached}.0",
                "0.0", "0.0", "0.0", "0.0", "0.0", "0.0"])
    return path


def clean_app(seed: int = 3, skip: date | None = None) -> list[Bucket]:
    """A healthy production app: gpt-5-mini, well cached, weekday-heavy, growing, noisy."""
    rng = random.Random(seed)
    out = []
    days = _days(HISTORY, END)
    for i, day in enumerate(days):
        if day == skip:
            continue
        growth = 1.0 + i / len(days)
        weekday = 1.0 if day.weekday() < 5 else 0.3
        for key in ("key_app1", "key_app2"):
            requests = int(1000 * growth * weekday * math.exp(rng.gauss(0, 0.2)))
            out.append(Bucket(_at(day), 86_400, "proj_app", key, "gpt-5-mini-2025-08-07",
                              requests, 1500, 900, 300))
    return out


def planted() -> list[list[Bucket]]:
    """Daily, hourly and minute buckets with one of each problem (see the tests' sums)."""
    daily = clean_app(skip=STORM_DAY)
    for day in _days(HISTORY, END):
        if day <= STALE_LAST:
            daily.append(Bucket(_at(day), 86_400, "proj_app", "key_old",
                                "gpt-5-mini-2025-08-07", 50, 1500, 900, 300))
        daily += [
            Bucket(_at(day), 86_400, "proj_legacy", "key_legacy", "gpt-4-0613", 100, 1000, 0,
                   200),
            Bucket(_at(day), 86_400, "proj_rag", "key_rag", "gpt-5-2025-08-07", 200, 5000, 0,
                   400),
            Bucket(_at(day), 86_400, "proj_cls", "key_cls", "gpt-4.1-2025-04-14", 2000, 300, 0,
                   5),
            Bucket(_at(day), 86_400, "proj_bot", "key_bot", "gpt-5-mini-2025-08-07", 500, 1000,
                   0, 0),
        ]
    hourly = [Bucket(_at(day, hour), 3_600, "proj_reports", "key_reports",
                     "gpt-4.1-mini-2025-04-14", 500, 2000, 1000, 500)
              for day in _days(HISTORY, END) for hour in (1, 2)]
    minute = []
    for m in range(1440):
        start = _at(STORM_DAY) + timedelta(minutes=m)
        storm = 5000 if 14 * 60 <= m < 14 * 60 + 10 else 0  # 50,000 retries in ten minutes
        minute.append(Bucket(start, 60, "proj_dev", "key_dev", "gpt-4o-mini-2024-07-18",
                             10 + storm, 200, 0, 50))
        minute.append(Bucket(start, 60, "proj_app", "key_app1", "gpt-5-mini-2025-08-07", 1,
                             1500, 900, 300))
    return [daily, hourly, minute]


def load(engine: Engine, tmp: Path, parts: list[list[Bucket]]) -> None:
    paths = [write_usage(tmp / f"completions_usage_part{i}.csv", part)
             for i, part in enumerate(parts)]
    results = import_sources(engine, [(p.name, p) for p in paths], user="test")
    assert all(r.ok for r in results), [r.error for r in results]


def load_planted(engine: Engine, tmp: Path) -> None:
    load(engine, tmp, planted())
    label_project(engine, SYSTEM, "openai", "proj_dev", "Dev", "Development")
    label_project(engine, SYSTEM, "openai", "proj_app", "App", "Production")


@pytest.fixture(scope="module")
def planted_store(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("planted")
    url = f"sqlite:///{folder / 'store.db'}"
    engine = get_engine(url)
    load_planted(engine, folder)
    yield engine
    dispose_engine(url)


@pytest.fixture(scope="module")
def report(planted_store):
    return find_insights(planted_store, SYSTEM, START, END)


def _only(report, kind: str):
    found = [f for f in report.findings if f.kind == kind]
    assert len(found) == 1, [f.title for f in found]
    return found[0]


def test_each_planted_problem_is_found_and_nothing_else(report):
    got = sorted((f.kind, f.project_id) for f in report.findings)
    assert got == sorted([
        ("legacy_model", "proj_legacy"), ("oversized_model", "proj_cls"),
        ("prompt_caching", "proj_rag"), ("batch_api", "proj_reports"),
        ("runaway", "proj_dev"), ("empty_output", "proj_bot"), ("rate_limit", "proj_dev"),
        ("stale_key", "proj_app")])
    assert report.days == 90
    dollars = [f.monthly_usd for f in report.findings]
    assert dollars == sorted(dollars, reverse=True), "ranked by $/month"


def test_gpt4_workload_repriced_on_gpt41(report):
    f = _only(report, "legacy_model")
    # a day: 100k input + 20k output. gpt-4: 0.1 x 30 + 0.02 x 60 = 4.20;
    # gpt-4.1: 0.1 x 2 + 0.02 x 8 = 0.36; saving 3.84 a day, x 30 = 115.20 a month.
    assert f.monthly_usd == pytest.approx(115.20)
    assert f.window_usd == pytest.approx(3.84 * 90)
    assert (f.model, f.api_key) == ("gpt-4-0613", "key_legacy")
    assert "gpt-4.1" in f.title and "quality" in f.caveat
    assert len(f.evidence) == 90 and f.evidence["requests"].sum() == 9000
    assert f.evidence["now_usd"].sum() == pytest.approx(4.20 * 90)


def test_short_requests_on_flagship_go_to_mini(report):
    f = _only(report, "oversized_model")
    # a day: 600k input + 10k output. gpt-4.1: 1.20 + 0.08 = 1.28;
    # gpt-4.1-mini: 0.24 + 0.016 = 0.256; saving 1.024 a day = 30.72 a month.
    assert f.monthly_usd == pytest.approx(30.72)
    assert "gpt-4.1-mini" in f.title and "300 prompt and 5 output" in f.action


def test_uncached_long_prompts(report):
    f = _only(report, "prompt_caching")
    # a day: 1M input, none cached. Half served from cache saves
    # 0.5M x (1.25 - 0.125) = 0.5625 a day = 16.875 a month.
    assert f.monthly_usd == pytest.approx(16.875)
    assert "0% cached" in f.title and "5,000 tokens" in f.action


def test_nightly_job_could_use_batch(report):
    f = _only(report, "batch_api")
    # a night: 1,000 requests, 1M uncached + 1M cached input, 0.5M output on gpt-4.1-mini:
    # 0.40 + 0.10 + 0.80 = 1.30; the Batch API halves it: 0.65 a night = 19.50 a month.
    assert f.monthly_usd == pytest.approx(19.50)
    assert "01:00, 02:00" in f.action


def test_retry_storm_in_minute_buckets(report):
    f = _only(report, "runaway")
    # 50,000 extra requests of 200 input + 50 output tokens on gpt-4o-mini:
    # 10M x 0.15 + 2.5M x 0.60 = 1.50 + 1.50 = 3.00 extra, over 90 days = 1.00 a month.
    assert f.window_usd == pytest.approx(3.00)
    assert f.monthly_usd == pytest.approx(1.00)
    assert (f.api_key, f.model) == ("key_dev", "gpt-4o-mini-2024-07-18")
    assert f.window == "2026-11-18 14:00–14:10 UTC"
    assert "+50,000 requests" in f.title
    assert len(f.evidence) == 10 and set(f.evidence["requests"]) == {5010}


def test_requests_with_no_output(report):
    f = _only(report, "empty_output")
    # a day: 500 requests x 1,000 input on gpt-5-mini = 0.5M x 0.25 = 0.125 = 3.75 a month.
    assert f.monthly_usd == pytest.approx(3.75)
    assert f.api_key == "key_bot"


def test_development_burst_fills_the_busiest_minutes(report):
    f = _only(report, "rate_limit")
    # in each storm minute Dev sends 5,010 of 5,011 requests
    assert "100%" in f.title and "10 busiest minutes" in f.title
    assert "throttle App" in f.action
    dev = f.evidence[f.evidence["project"] == "Dev"]
    assert len(dev) == 10 and dev["share"].min() == pytest.approx(5010 / 5011)


def test_key_unused_for_45_days(report):
    f = _only(report, "stale_key")
    assert f.api_key == "key_old" and "45 days" in f.title and f.monthly_usd == 0


def test_environment_label_makes_a_batch_candidate(planted_store):
    label_project(planted_store, SYSTEM, "openai", "proj_cls", None, "Analytics")
    try:
        found = find_insights(planted_store, SYSTEM, START, END).findings
    finally:
        label_project(planted_store, SYSTEM, "openai", "proj_cls", None, None)
    batch = [f for f in found if f.kind == "batch_api" and f.project_id == "proj_cls"]
    # 1.28 a day at full price, half of it saved: 0.64 x 30 = 19.20 a month
    assert len(batch) == 1 and batch[0].monthly_usd == pytest.approx(19.20)


def test_scoped_principal_sees_only_its_projects(planted_store):
    scoped = Principal("sam", "reader", frozenset({"proj_legacy"}))
    found = find_insights(planted_store, scoped, START, END).findings
    assert [(f.kind, f.project_id) for f in found] == [("legacy_model", "proj_legacy")]


def test_clean_organisation_has_no_findings(engine, tmp_path):
    load(engine, tmp_path, [clean_app(seed=11)])
    report = find_insights(engine, SYSTEM, START, END)
    assert report is not None and report.findings == []
    assert findings_frame(report).empty


@pytest.mark.slow
def test_planted_store_on_every_backend(engine, tmp_path):
    """The SQL (bucket widths, scoping) behaves alike on SQLite and PostgreSQL."""
    load_planted(engine, tmp_path)
    kinds = {f.kind for f in find_insights(engine, SYSTEM, START, END).findings}
    assert kinds == {"legacy_model", "oversized_model", "prompt_caching", "batch_api",
                     "runaway", "empty_output", "rate_limit", "stale_key"}


def test_empty_store_has_no_report(engine):
    assert find_insights(engine, SYSTEM) is None


def test_window_outside_the_data_is_refused(engine, tmp_path):
    load(engine, tmp_path, [clean_app()])
    with pytest.raises(ValueError, match="no data between"):
        find_insights(engine, SYSTEM, date(2030, 1, 1), date(2030, 2, 1))


@pytest.mark.slow
def test_cli_json_and_csv(planted_store, capsys):
    url = str(planted_store.url)
    assert main(["insights", "--db", url, "--start", str(START), "--end", str(END),
                 "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    first = data["findings"][0]
    assert first["kind"] == "legacy_model" and first["monthly_usd"] == pytest.approx(115.2)
    assert len(first["evidence"]) == 90
    assert main(["insights", "--db", url, "--start", str(START), "--end", str(END),
                 "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("kind,category,title") and len(lines) == 9


# --- the detector on its own ------------------------------------------------------------


def _daily(values: list[float], first: str = "2026-01-05") -> pd.DataFrame:
    return pd.DataFrame({"unique_id": "k", "ds": pd.date_range(first, periods=len(values)),
                         "y": values})


def test_weekly_pattern_with_growth_never_alarms():
    rng = np.random.default_rng(5)
    n = 364
    weekday = np.array([1.0, 1, 1, 1, 1, 0.1, 0.1] * (n // 7))  # starts on a Monday
    y = 500 * weekday * np.linspace(1, 3, n) * np.exp(rng.normal(0, 0.2, n))
    assert not anomaly.score(_daily(list(y)), anomaly.DAILY)["anomalous"].any()


def test_a_tenfold_day_alarms_once():
    y = [100.0, 100, 100, 100, 100, 30, 30] * 6
    y[38] = 1000.0
    scored = anomaly.score(_daily(y), anomaly.DAILY)
    assert scored.index[scored["anomalous"]].tolist() == [38]
    assert scored.loc[38, "baseline"] == 100.0
    eps = anomaly.episodes(scored)
    assert eps[["first", "last", "buckets"]].iloc[0].tolist() == [
        pd.Timestamp("2026-02-12"), pd.Timestamp("2026-02-12"), 1]


def test_complete_grid_fills_quiet_buckets_with_zero():
    frame = pd.DataFrame({"unique_id": ["a", "a"], "ds": pd.to_datetime(
        ["2026-01-01 00:00", "2026-01-01 00:03"]), "y": [5, 7]})
    assert anomaly.complete_grid(frame, "60s", ["y"])["y"].tolist() == [5, 0, 0, 7]


def test_complete_grid_gives_each_series_its_own_span():
    frame = pd.DataFrame({"unique_id": ["b", "a", "b", "a"], "ds": pd.to_datetime(
        ["2026-01-01 00:02", "2026-01-01 00:00", "2026-01-01 00:04", "2026-01-01 00:01"]),
        "y": [1, 2, 3, 4]})
    grid = anomaly.complete_grid(frame, "60s", ["y"])
    assert grid["unique_id"].astype(str).tolist() == ["a", "a", "b", "b", "b"]
    assert grid["ds"].dt.minute.tolist() == [0, 1, 2, 3, 4]
    assert grid["y"].tolist() == [2, 4, 1, 0, 3]


def test_episodes_add_up_each_run():
    flags = pd.DataFrame({"unique_id": ["k"] * 6, "ds": pd.date_range("2026-01-01", periods=6),
                          "anomalous": [False, True, True, False, True, False],
                          "extra": [9.0, 1.5, 2.0, 9.0, 4.0, 9.0]})
    runs = anomaly.episodes(flags, sums=["extra"])
    assert runs[["buckets", "extra"]].values.tolist() == [[2, 3.5], [1, 4.0]]
