"""An import stopped midway (Ctrl-C, a killed process) leaves no partial rows and no import
record, and two imports at once never add up to more than the truth. (Issue: store,
importers and CLI.)"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine

from analytics import ingest, usage_ingest
from analytics.access import SYSTEM
from analytics.importers import parse_sources
from analytics.ingest import import_parsed, import_sources
from analytics.queries import import_history, spend, total_cost
from analytics.store import dispose_engine, get_engine
from tests.conftest import ROOT
from tests.helpers import store_snapshot, write
from tests.test_import_errors import DAY, USAGE_HEADER, cost_csv, cost_row, csv_text, usage_row

ITEMS = ("gpt-5-2025-08-07, input", "gpt-5-2025-08-07, output")


def _interrupt_after(rows: Iterator, n: int) -> Iterator:
    for i, row in enumerate(rows):
        if i == n:
            raise KeyboardInterrupt
        yield row


def _one_then_more(batches: Iterator) -> Iterator:
    """The fast reader's batches, and the first one again (a file long enough for two)."""
    first = next(batches)
    yield first
    yield first


def _usage(days: range, keys: int) -> bytes:
    """``keys`` rows a day; row (day n, key k) holds 1000 * n + k input tokens."""
    return csv_text(USAGE_HEADER, [
        usage_row(DAY + timedelta(days=n), key=f"key_{k:05d}", input_tokens=f"{1000 * n + k}.0")
        for n in days for k in range(keys)]).encode()


def _usage_truth(days: range, keys: int) -> int:
    return sum(1000 * n + k for n in days for k in range(keys))


def _cost(days: range) -> bytes:
    """Day n, item i costs n + 0.25 * (i + 1) dollars."""
    return cost_csv([cost_row(DAY + timedelta(days=n), f"{n + 0.25 * (i + 1):.16f}", item)
                     for n in days for i, item in enumerate(ITEMS)])


def _cost_truth(days: range) -> Decimal:
    return sum((Decimal(n) + Decimal("0.25") * (i + 1) for n in days for i in range(len(ITEMS))),
               Decimal(0))


def _seeded(engine: Engine, tmp: Path) -> dict[str, object]:
    results = import_sources(engine, [("seed_usage.csv", write(tmp, "seed_usage.csv",
                                                               _usage(range(0, 3), 5))),
                                      ("seed_cost.csv", write(tmp, "seed_cost.csv",
                                                              _cost(range(0, 3))))])
    assert all(r.ok for r in results)
    return store_snapshot(engine)


@pytest.mark.parametrize(("kind", "reader"), [
    ("usage", "rows"), ("usage", "columns"), ("cost", "rows")])
def test_ctrl_c_while_rows_stream_in_leaves_the_store_as_it_was(
        engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str,
        reader: str) -> None:
    """``rows``: the row-by-row reader, several chunks of which reach the database first;
    ``columns``: the fast columnar reader of usage CSVs, stopped after its first batch."""
    before = _seeded(engine, tmp_path)
    monkeypatch.setattr(ingest, "CHUNK", 10)
    monkeypatch.setattr(usage_ingest, "CHUNK", 10)
    content = _usage(range(1, 5), 20) if kind == "usage" else _cost(range(1, 40))
    [parsed] = parse_sources([(f"{kind}.csv", content)])
    if reader == "rows":
        parsed.columnar = None
        parsed.rows = _interrupt_after(parsed.rows, 45)
    else:
        batches = parsed.columnar
        parsed.columnar = lambda: _interrupt_after(_one_then_more(batches()), 1)
    with pytest.raises(KeyboardInterrupt):
        import_parsed(engine, parsed, "0" * 64, "tester")
    assert store_snapshot(engine) == before
    [again] = import_sources(engine, [(f"{kind}.csv", content)])
    assert again.ok and again.rows == (80 if kind == "usage" else 78)


def test_ctrl_c_after_old_rows_were_deleted_restores_them(
        engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The riskiest moment: the file's days were deleted and its rows copied in, but the
    import is not yet committed."""
    before = _seeded(engine, tmp_path)

    def interrupted(*_args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(ingest, "_upsert_names", interrupted)
    [parsed] = parse_sources([("overlap.csv", _cost(range(1, 6)))])
    with pytest.raises(KeyboardInterrupt):
        import_parsed(engine, parsed, "0" * 64, "tester")
    assert store_snapshot(engine) == before
    assert total_cost(engine, SYSTEM) == _cost_truth(range(0, 3))


def _write_locked(db_file: Path) -> bool:
    """Whether another process holds the store's write lock (an import is under way)."""
    probe = sqlite3.connect(db_file, timeout=0, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        probe.close()


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "analytics", *args]


@pytest.mark.slow
def test_killed_import_process_leaves_the_store_as_it_was(tmp_path: Path) -> None:
    db_file = tmp_path / "store.db"
    url = f"sqlite:///{db_file}"
    engine = get_engine(url)
    try:
        before = _seeded(engine, tmp_path)
        big = write(tmp_path, "big.csv", _usage(range(0, 40), 10_000))  # 400,000 rows
        proc = subprocess.Popen(_cli("import", str(big), "--db", url), cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not _write_locked(db_file):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the import never started writing"
            time.sleep(0.02)
        time.sleep(0.3)
        assert _write_locked(db_file), "the import committed before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        assert proc.returncode == -signal.SIGKILL
        assert store_snapshot(engine) == before
        [again] = import_sources(engine, [("big.csv", big)])
        assert again.ok and again.rows == 400_000
        assert len(import_history(engine)) == 3
        assert int(spend(engine, SYSTEM, "provider")["input_tokens"].iloc[0]) == _usage_truth(
            range(0, 40), 10_000)
    finally:
        dispose_engine(url)


@pytest.mark.slow
def test_two_imports_at_once_never_sum(engine: Engine, db_url: str, tmp_path: Path) -> None:
    first, second = range(0, 16), range(8, 24)  # eight shared days
    keys = 2500
    jobs = []
    for tag, days in (("a", first), ("b", second)):
        usage = write(tmp_path, f"usage_{tag}.csv", _usage(days, keys))
        cost = write(tmp_path, f"cost_{tag}.csv", _cost(days))
        jobs.append(subprocess.Popen(_cli("import", str(usage), str(cost), "--db", db_url),
                                     cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True))
    for job in jobs:
        out, err = job.communicate(timeout=300)
        assert job.returncode == 0, err
    union = range(0, 24)
    frame = spend(engine, SYSTEM, "day")
    assert int(frame["input_tokens"].sum()) == _usage_truth(union, keys)
    assert total_cost(engine, SYSTEM) == _cost_truth(union)
    assert len(import_history(engine)) == 4
