"""``reconcile``, ``reprice`` and ``prices`` from the shell: data on stdout, summaries on
stderr, plain errors with exit code 1. Dollar figures as in tests/test_reconcile.py."""

from __future__ import annotations

import argparse
import csv
import io
import json
from datetime import timedelta

import pytest

from analytics import audit
from analytics.cli import main
from analytics.cli_pricing import add_reconcile_parser
from analytics.scenarios import list_scenarios
from tests.pricing_fixtures import D1, D2, GPT4O, PROD, RESEARCH, import_exports, usage

BUCKET = (1_000_000, 200_000, 100_000)  # $3.25 at gpt-4o prices, $0.405 at gpt-5-mini


@pytest.fixture
def db(engine, db_url, tmp_path):
    import_exports(engine, tmp_path, [usage(D1, PROD, GPT4O, *BUCKET),
                                      usage(D2, PROD, GPT4O, *BUCKET),
                                      usage(D2, RESEARCH, "mystery-model-1", 500, 0, 50)],
                   [(D1, PROD, f"{GPT4O}, input", "3.25"),
                    (D2, PROD, f"{GPT4O}, input", "3.50"),
                    (D1, PROD, "text-embedding-3-small, input", "0.40")])
    return db_url


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_reconcile_json_rows_and_summary_line(db, capsys):
    code, out, err = run(capsys, "reconcile", "--db", db, "--format", "json")
    assert code == 0
    rows = {(r["day"], r["model"]): r for r in json.loads(out)}
    assert rows[(D1.isoformat(), "gpt-4o")]["flagged"] is False
    assert rows[(D2.isoformat(), "gpt-4o")]["reason"].startswith("unexplained difference")
    assert rows[(D1.isoformat(), "text-embedding-3-small")]["reason"].startswith(
        "missing usage export")
    assert "3 of 4 rows differ by more than 1%" in err  # day 2 (7.1%), embeddings, unpriced
    assert "billed $7.15" in err


def test_reconcile_rows_table_flagged_only(db, capsys):
    """The default report, rows as a table: only flagged rows with ``--flagged``, and
    project names instead of ids."""
    code, out, err = run(capsys, "reconcile", "--db", db, "--flagged")
    assert code == 0
    header, *lines = out.strip().splitlines()
    assert header.split() == ["day", "provider", "project", "model", "billed_usd",
                              "estimated_usd", "difference_usd", "difference_pct", "flagged",
                              "reason"]
    assert len(lines) == 3 and all(" True " in line for line in lines)
    assert "Production" in out and PROD not in out
    mystery = next(line for line in lines if "mystery-model-1" in line)
    assert "missing cost export" in mystery
    assert "3 of 4 rows differ" in err


def test_reconcile_json_has_null_for_a_missing_bill(db, capsys):
    """No bill is ``null`` in JSON (NaN is not JSON), as is the percent of no bill."""
    code, out, _ = run(capsys, "reconcile", "--db", db, "--format", "json")
    assert code == 0 and "NaN" not in out
    row = next(r for r in json.loads(out) if r["model"] == "mystery-model-1")
    assert row["billed_usd"] is None and row["difference_pct"] is None


def test_reconcile_by_model_flagged_csv(db, capsys):
    code, out, _ = run(capsys, "reconcile", "--db", db, "--by", "model", "--flagged",
                       "--threshold-pct", "5", "--format", "csv")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].startswith("model,billed_usd,estimated_usd,difference_usd")
    models = sorted(line.split(",")[0] for line in lines[1:])
    # gpt-4o: 0.25 / 6.75 = 3.7%, under 5%
    assert models == ["mystery-model-1", "text-embedding-3-small"]


def test_reconcile_parser_hooks_under_report(db, capsys):
    parser = argparse.ArgumentParser()
    report = parser.add_subparsers(dest="command").add_parser("report")
    add_reconcile_parser(report.add_subparsers(dest="report"), argparse.ArgumentParser(
        add_help=False))
    args = parser.parse_args(["report", "reconcile", "--format", "csv"])
    args.db = db
    assert args.handler(args) == 0
    assert capsys.readouterr().out.startswith("day,provider,project_id")


def test_reprice_migration_by_month_and_save(db, engine, capsys):
    code, out, err = run(capsys, "reprice", "--db", db, "--start", "2026-09-01", "--end",
                         "2026-09-30", "--migrate", "gpt-4o:gpt-5-mini:100%", "--by", "month",
                         "--format", "json", "--save", "all to mini", "--user", "ops")
    assert code == 0
    (month,) = json.loads(out)
    assert month["month"] == "2026-09"
    assert month["difference_usd"] == pytest.approx(2 * (0.405 - 3.25))
    assert "warning: not in the sums: mystery-model-1" in err
    assert list_scenarios(engine)["name"].tolist() == ["all to mini"]
    assert audit.entries(engine, action="scenario.save")["username"].tolist() == ["ops"]
    code, out, _ = run(capsys, "reprice", "--db", db, "--start", "2026-09-01", "--end",
                       "2026-09-30", "--scenario", "all to mini", "--by", "model",
                       "--format", "csv")
    assert code == 0
    rows = {r["model"]: r for r in csv.DictReader(io.StringIO(out))}
    assert float(rows[GPT4O]["difference_usd"]) == pytest.approx(2 * (0.405 - 3.25))
    assert rows["mystery-model-1"]["unpriced_rows"] == "1"


def test_reprice_with_a_price_file(db, capsys, tmp_path):
    prices = tmp_path / "cheaper.csv"
    prices.write_text("provider,family,effective_from,input_per_1m,cached_input_per_1m,"
                      "output_per_1m\nopenai,gpt-4o,2026-01-01,1.25,0.625,5\n")
    code, out, err = run(capsys, "reprice", "--db", db, "--start", "2026-09-01", "--end",
                         "2026-09-30", "--prices", str(prices), "--by", "project",
                         "--format", "json")
    assert code == 0
    by = {r["project_id"]: r for r in json.loads(out)}
    assert by[PROD]["difference_usd"] == pytest.approx(-3.25)  # half price: 6.50 -> 3.25
    assert "difference -$3.25" in err


@pytest.mark.parametrize("argv,message", [
    (["--scenario", "nope"], "no saved scenario named 'nope'"),
    (["--migrate", "gpt-4o:gpt-5-mini:x"], "not a number"),
])
def test_reprice_errors_are_plain(db, capsys, argv, message):
    code, _, err = run(capsys, "reprice", "--db", db, "--start", "2026-09-01", "--end",
                       "2026-09-30", *argv)
    assert code == 1 and err.startswith("error:") and message in err


def test_prices_add_list_history_and_unpriced(db, capsys):
    code, out, _ = run(capsys, "prices", "add", "--db", db, "--provider", "openai",
                       "--family", "gpt-4o", "--effective-from", "2027-01-01",
                       "--input", "2", "--output", "8", "--user", "olivia")
    assert code == 0 and "added openai gpt-4o (default) from 2027-01-01" in out
    _, out, _ = run(capsys, "prices", "list", "--db", db, "--at", "2026-12-31", "--format",
                    "json")
    gpt4o = [r for r in json.loads(out) if r["family"] == "gpt-4o"]
    assert [r["input_per_1m"] for r in gpt4o] == ["2.50"]
    _, out, _ = run(capsys, "prices", "list", "--db", db, "--at", "2027-01-01", "--format",
                    "json")
    assert [r["input_per_1m"] for r in json.loads(out) if r["family"] == "gpt-4o"] == ["2"]
    _, out, _ = run(capsys, "prices", "history", "--db", db, "--format", "json")
    assert [(r["family"], r["created_by"]) for r in json.loads(out)] == [("gpt-4o", "olivia")]
    _, out, _ = run(capsys, "prices", "unpriced", "--db", db, "--format", "csv")
    assert out.splitlines()[1].startswith("openai,mystery-model-1,mystery-model-1,")


def test_prices_add_bad_value_is_a_plain_error(db, capsys):
    code, _, err = run(capsys, "prices", "add", "--db", db, "--provider", "openai",
                       "--family", "gpt-4o", "--effective-from", "soon", "--input", "2",
                       "--output", "8")
    assert code == 1 and "effective_from 'soon' is not a date" in err



def test_reconcile_defaults_to_the_last_month_of_data(engine, db_url, tmp_path, capsys):
    """Without dates the report covers the last 30 days of data (of the project asked
    for), as the page opens, and says so; ``--all`` covers all of time; both at once is
    refused."""
    day = D2 + timedelta(days=40)
    import_exports(engine, tmp_path, [usage(D1, PROD, GPT4O, *BUCKET),
                                      usage(day, PROD, GPT4O, *BUCKET),
                                      usage(D1, RESEARCH, GPT4O, *BUCKET)],
                   [(D1, PROD, f"{GPT4O}, input", "3.25"), (day, PROD, f"{GPT4O}, input", "3.25")])
    code, out, err = run(capsys, "reconcile", "--db", db_url, "--format", "csv")
    assert code == 0
    assert {line.split(",")[0] for line in out.splitlines()[1:]} == {day.isoformat()}
    assert f"{day - timedelta(days=29)} to {day}: the last 30 days of data" in err
    code, out, _ = run(capsys, "reconcile", "--db", db_url, "--format", "csv", "--all")
    assert {line.split(",")[0] for line in out.splitlines()[1:]} == {D1.isoformat(),
                                                                     day.isoformat()}
    # A project's own last days: its data stopped long before the others'.
    code, out, _ = run(capsys, "reconcile", "--db", db_url, "--format", "csv", "--project",
                       RESEARCH)
    assert {line.split(",")[0] for line in out.splitlines()[1:]} == {D1.isoformat()}
    code, _, err = run(capsys, "reconcile", "--db", db_url, "--all", "--start", "2026-09-01")
    assert code == 1 and "not both" in err
