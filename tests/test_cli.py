"""``python -m analytics`` from a shell: import lines, JSON, exit codes, spend reports and
their filters and formats, and ``--db``. Commands run as real subprocesses; independent ones
run side by side to keep the suite quick. (Issue: store, importers and CLI.)"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine

from analytics import spend_daily
from analytics.access import SYSTEM
from analytics.demo import COST_HEADER_V2
from analytics.ingest import import_sources
from analytics.queries import total_cost
from tests.conftest import ROOT
from tests.helpers import store_snapshot, write
from tests.test_import_errors import DAY, cost_csv, cost_row_v2, usage_csv, usage_row

DAYS = (DAY, DAY + timedelta(days=1), DAY + timedelta(days=2))
PROJECTS = ("proj_a", "proj_b")
MODELS = ("gpt-5-2025-08-07", "gpt-4o-2024-08-06")


def _facts() -> tuple[list[dict], list[dict]]:
    """The org in this file: two projects, two keys (one user each) per project, two models,
    three days. Cost and usage facts, from which the exports and the expectations are made."""
    cost, usage = [], []
    for n, day in enumerate(DAYS):
        for p, project in enumerate(PROJECTS):
            for k in range(2):
                key, user = f"key_{p}{k}", f"user_{p}{k}"
                for m, model in enumerate(MODELS):
                    base = dict(day=day, project=project, key=key, user=user, model=model)
                    cost.append({**base, "line_item": f"{model}, {('input', 'output')[m]}",
                                 "amount": Decimal(f"{n + 1}.{p}{k}{m}25")})
                    usage.append({**base, "input": 1000 * (n + 1) + 100 * p + 10 * k + m,
                                  "cached": 10 * (n + 1), "output": 7 + m, "requests": 3 + k})
    return cost, usage


COST_FACTS, USAGE_FACTS = _facts()
COST_FILE = cost_csv([cost_row_v2(f["day"], f"{f['amount']:.16f}", f["line_item"], f["project"],
                                  f["key"], f["user"]) for f in COST_FACTS], COST_HEADER_V2)
USAGE_FILE = usage_csv([usage_row(f["day"], f["project"], f["key"], f["user"], f["model"],
                                  requests=f"{f['requests']}.0", input_tokens=f"{f['input']}.0",
                                  cached=f"{f['cached']}.0", output=f"{f['output']}.0")
                        for f in USAGE_FACTS])
TOTAL = sum((f["amount"] for f in COST_FACTS), Decimal(0))


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "analytics", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, **(env or {})})


def _done(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def _cli(*args: str) -> tuple[int, str, str]:
    return _done(_run(*args))


def _exports(tmp: Path) -> tuple[Path, Path]:
    return write(tmp, "cost.csv", COST_FILE), write(tmp, "completions_usage.csv", USAGE_FILE)


def _load(engine: Engine, tmp: Path) -> None:
    cost, usage = _exports(tmp)
    assert all(r.ok for r in import_sources(engine, [("cost.csv", cost), ("usage", usage)]))


def test_import_prints_a_line_per_file_and_fails_only_for_the_bad_ones(
        engine: Engine, db_url: str, tmp_path: Path) -> None:
    cost, usage = _exports(tmp_path)
    bad_count = write(tmp_path, "bad_count.csv", usage_csv([
        usage_row(DAY), usage_row(DAY, key="key_x", input_tokens="lots")]))
    not_utf8 = write(tmp_path, "latin1.csv", COST_FILE.replace(b"Test Org", b"T\xe9st Org", 1))
    code, out, err = _cli("import", str(cost), str(bad_count), str(usage), str(not_utf8),
                          "--db", db_url)
    assert code == 1
    lines = out.splitlines()
    assert len(lines) == 2
    rows = len(COST_FACTS)
    assert lines[0] == (f"{cost}: openai_cost_csv, {rows} rows, {rows} new, 0 replaced, "
                        f"2026-09-01..2026-09-03, ${TOTAL:,.2f}")
    rows = len(USAGE_FACTS)
    assert lines[1] == (f"{usage}: openai_usage_csv, {rows} rows, {rows} new, 0 replaced, "
                        "2026-09-01..2026-09-03")
    errors = err.splitlines()
    assert len(errors) == 2
    assert errors[0].startswith(f"error: {bad_count}, line 3: ") and "'lots'" in errors[0]
    assert errors[1].startswith(f"error: {not_utf8}, line 2: ") and "UTF-8" in errors[1]
    assert total_cost(engine, SYSTEM) == TOTAL


def test_import_json_output(engine: Engine, db_url: str, tmp_path: Path) -> None:
    _load(engine, tmp_path)
    cost, _ = _exports(tmp_path)
    code, out, _ = _cli("import", str(cost), "--json", "--db", db_url, "--user", "finance")
    assert code == 0
    [result] = json.loads(out)
    assert result["file"] == str(cost) and result["ok"] is True and not result["skipped"]
    assert (result["format"], result["kind"]) == ("openai_cost_csv", "cost")
    assert (result["rows"], result["new"], result["replaced"]) == (
        len(COST_FACTS), 0, len(COST_FACTS))
    assert (result["first_day"], result["last_day"]) == ("2026-09-01", "2026-09-03")
    assert Decimal(result["total_usd"]) == TOTAL and result["error"] is None


def test_folder_skips_a_non_export_that_fails_when_named(
        engine: Engine, db_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "samples"
    folder.mkdir()
    write(folder, "cost.csv", COST_FILE)
    truth = write(folder, "truth.json", json.dumps({"truth": {"total_usd": 1}}).encode())
    as_folder = _run("import", str(folder), "--db", db_url)
    named = _run("import", str(truth), "--db", db_url)
    code, out, err = _done(as_folder)
    assert code == 0, err
    assert f"skipped: {truth}: not a recognised export" in out
    assert err == ""
    code, out, err = _done(named)
    assert code == 1 and out == ""
    assert err.startswith(f"error: {truth}: ") and len(err.splitlines()) == 1
    assert total_cost(engine, SYSTEM) == TOTAL


def _expected(dim: str) -> list[dict]:
    """The JSON rows ``report spend --by dim`` must print, grouped here from the facts."""
    field = {"project": "project", "model": "model", "api_key": "key", "user": "user",
             "day": "day", "month": "day"}[dim]

    def key(fact: dict) -> str:
        value = fact[field]
        return value.isoformat()[:7] if dim == "month" else str(value)

    money: dict[str, Decimal] = defaultdict(Decimal)
    tokens: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for f in COST_FACTS:
        money[key(f)] += f["amount"]
    for f in USAGE_FACTS:
        for i, c in enumerate(("input", "cached", "output", "requests")):
            tokens[key(f)][i] += f[c]
    rows = []
    for k in sorted(money):
        row: dict = {"key": k}
        if dim == "project":
            row["name"] = k.upper()
        if dim == "api_key":
            row["name"] = f"name of {k}"
        row["cost_usd"] = float(round(money[k], 6))
        row["basis"] = "billed"  # every group here has billed cost
        row.update(zip(("input_tokens", "cached_input_tokens", "output_tokens", "requests"),
                       tokens[k], strict=True))
        row["unpriced_models"] = ""
        rows.append(row)
    return rows


@pytest.mark.parametrize("dim", [
    "project", "api_key",  # the two with display names
    *(pytest.param(d, marks=pytest.mark.slow) for d in ("model", "user", "day", "month"))])
def test_report_spend_by_dimension_as_json(engine: Engine, db_url: str, tmp_path: Path,
                                           dim: str) -> None:
    _load(engine, tmp_path)
    code, out, err = _cli("report", "spend", "--by", dim, "--format", "json", "--db", db_url)
    assert code == 0, err
    assert json.loads(out) == _expected(dim)


def test_report_filters_and_csv_round_trip(engine: Engine, db_url: str, tmp_path: Path) -> None:
    _load(engine, tmp_path)
    filtered = _run("report", "spend", "--by", "day", "--start", "2026-09-02", "--end",
                    "2026-09-03", "--project", "proj_b", "--format", "csv", "--db", db_url)
    everything = _run("report", "spend", "--by", "model", "--format", "csv", "--db", db_url)
    code, out, err = _done(filtered)
    assert code == 0, err
    got = {r["key"]: Decimal(r["cost_usd"]) for r in csv.DictReader(io.StringIO(out))}
    assert got == {d.isoformat(): sum((f["amount"] for f in COST_FACTS
                                       if f["day"] == d and f["project"] == "proj_b"),
                                      Decimal(0)) for d in DAYS[1:]}
    code, out, err = _done(everything)
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["key", "cost_usd", "basis", "input_tokens", "cached_input_tokens",
                             "output_tokens", "requests", "unpriced_models"]
    assert sum(Decimal(r["cost_usd"]) for r in rows) == TOTAL
    assert sum(int(r["input_tokens"]) for r in rows) == sum(f["input"] for f in USAGE_FACTS)


def test_db_flag_overrides_the_environment(engine: Engine, db_url: str, tmp_path: Path) -> None:
    _load(engine, tmp_path)
    before = store_snapshot(engine)
    other = f"sqlite:///{tmp_path / 'other.db'}"
    env = {"BURNRATE_DB_URL": other}
    flagged = _run("report", "spend", "--by", "project", "--format", "json", "--db", db_url,
                   env=env)
    from_env = _run("report", "spend", "--by", "project", "--format", "json", env=env)
    code, out, err = _done(flagged)
    assert code == 0, err
    assert sum(Decimal(str(r["cost_usd"])) for r in json.loads(out)) == TOTAL
    code, out, err = _done(from_env)
    assert code == 0, err
    assert json.loads(out) == []
    assert store_snapshot(engine) == before


# ``-X importtime`` would not do: it leaves out modules loaded through importlib, as cli.py
# loads the cli_*.py modules.
_LOADED_BY_CLI = """import json, runpy, sys
try:
    runpy.run_module("analytics", run_name="__main__", alter_sys=True)
except SystemExit as stop:
    assert not stop.code, stop.code
print(json.dumps(sorted(sys.modules)))"""


def _loaded(code: str, *args: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running ``code`` with ``args``."""
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_a_report_imports_its_own_code_and_no_other_commands(engine: Engine, db_url: str) -> None:
    """Every command loads every ``cli_*.py``, so one that imports its feature at the top
    slows every report (issue #9), as does Alembic on a store that needs no upgrade. With the
    spend rollup current, a report is SQL and text: pandas and numpy alone take longer to
    load than the 0.5 s a report may take, so neither is loaded."""
    spend_daily.refresh(engine)
    report = _loaded(_LOADED_BY_CLI, "report", "spend", "--by", "project", "--db", db_url)
    needed = _loaded("import json, sys, analytics.spend_daily, analytics.queries, "
                     "analytics.exports; print(json.dumps(sorted(sys.modules)))")
    ours = {m for m in report - needed if m.split(".")[0] in ("analytics", "alembic")}
    assert "analytics.cli_forecast" in ours
    assert sorted(m for m in ours if not m.startswith("analytics.cli")) == []
    assert not {"pandas", "numpy", "pyarrow", "alembic"} & report


def test_a_reconcile_report_loads_no_pandas(engine: Engine, db_url: str) -> None:
    """Reconciling every row is read from the rollup and compared in plain Python, and its
    sums by model too: the month a person usually asks for prints in half a second (#9)."""
    spend_daily.refresh(engine)
    for by in ("row", "model"):
        loaded = _loaded(_LOADED_BY_CLI, "report", "reconcile", "--by", by, "--db", db_url)
        assert "analytics.reconcile_rows" in loaded, by
        assert not {"pandas", "numpy", "pyarrow", "alembic"} & loaded, by
