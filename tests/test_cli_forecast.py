"""``forecast`` and ``budgets list|add|remove|check`` from the shell: the JSON fields, --as-of
replaying the past exactly, budgets written as an audited Owner, exit code 3 for cron."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

from analytics import audit
from analytics.cli import main
from analytics.demo import simulate
from analytics.store import dispose_engine, get_engine
from tests.forecast_fixtures import DEV, PROD, flat_org, load

FIELDS = {"period_start", "period_end", "actual_to_date_usd", "forecast_usd", "low_usd",
          "high_usd", "interval", "method"}
BUDGET_FIELDS = {"budget_usd", "p_over_budget", "breach_date"}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def flat(engine, db_url):
    """$10/day on Dev, $30/day on Prod, 1 Aug to 14 Nov 2026."""
    load(engine, flat_org(date(2026, 8, 1), date(2026, 11, 14),
                          {DEV: Decimal("10"), PROD: Decimal("30")}))
    return db_url


def test_forecast_json_fields_without_and_with_a_budget(flat, capsys):
    code, out, _ = run(capsys, "forecast", "--db", flat, "--project", DEV, "--format", "json")
    data = json.loads(out)
    assert code == 0 and FIELDS <= set(data) and not BUDGET_FIELDS & set(data)
    assert (data["period_start"], data["period_end"]) == ("2026-11-01", "2026-11-30")
    assert data["actual_to_date_usd"] == 140.0
    assert data["forecast_usd"] == pytest.approx(300.0, rel=0.01)
    assert data["low_usd"] <= data["forecast_usd"] <= data["high_usd"]
    assert (data["interval"], data["method"]) == (0.8, "shipped")

    assert run(capsys, "budgets", "add", "Dev", "--db", flat, "--amount", "245",
               "--scope", f"project:{DEV}")[0] == 0
    code, out, _ = run(capsys, "forecast", "--db", flat, "--project", DEV, "--format", "json")
    data = json.loads(out)
    assert data["budget_usd"] == 245.0
    assert data["p_over_budget"] > 0.5, "the forecast ($300) is well over $245"
    assert data["breach_date"] == "2026-11-25", "$250 on the 25th is the first day over"


def test_as_of_ignores_later_data(db_url, engine, capsys, tmp_path):
    """A forecast as of 10 Nov on the full store equals one on a store that stops there."""
    org = simulate(seed=11, days=80, end=date(2026, 11, 20), scale=0.05)
    load(engine, org)
    short_url = f"sqlite:///{tmp_path / 'short.db'}"
    load(get_engine(short_url), org, upto=date(2026, 11, 10))

    code, out, _ = run(capsys, "forecast", "--db", db_url, "--as-of", "2026-11-10",
                       "--format", "json")
    replayed = json.loads(out)
    code_short, out_short, _ = run(capsys, "forecast", "--db", short_url, "--format", "json")
    dispose_engine(short_url)
    assert code == code_short == 0
    assert replayed == json.loads(out_short)
    truth = sum(v for d, v in org.truth_by_day().items() if date(2026, 11, 1) <= d
                <= date(2026, 11, 10))
    assert replayed["actual_to_date_usd"] == pytest.approx(float(truth), abs=0.01)
    assert replayed["as_of"] == "2026-11-10"


def test_budgets_add_list_remove_are_audited(flat, capsys):
    code, out, _ = run(capsys, "budgets", "add", "Prod quarter", "--db", flat, "--amount",
                       "$9,000", "--scope", f"project:{PROD}", "--period", "quarter",
                       "--limit", "hard", "--threshold", "80:notify", "--threshold",
                       "95:switch keys off", "--reserve", "10", "--user", "fiona")
    assert code == 0 and "saved" in out
    code, out, _ = run(capsys, "budgets", "list", "--db", flat, "--format", "json")
    [saved] = json.loads(out)
    assert saved == {"name": "Prod quarter", "scope": f"project:{PROD}", "amount": "9000",
                     "kind": "quarter", "anchor_day": 1, "limit": "hard",
                     "thresholds": [{"pct": 80, "action": "notify"},
                                    {"pct": 95, "action": "switch keys off"}],
                     "reserve_pct": "10"}
    assert run(capsys, "budgets", "remove", "Prod quarter", "--db", flat, "--user",
               "fiona")[0] == 0
    assert json.loads(run(capsys, "budgets", "list", "--db", flat, "--format", "json")[1]) == []
    log = audit.entries(get_engine(flat))
    assert list(log.loc[log["action"].str.startswith("budget."), "username"]) == ["fiona"] * 2


@pytest.mark.parametrize("args, message", [
    (["--amount", "lots"], "not a number"),
    (["--amount", "100", "--threshold", "eighty"], "PCT:ACTION"),
    (["--amount", "-5"], "positive"),
    (["--amount", "100", "--scope", "team:x"], "scope must be"),
])
def test_budgets_add_refuses_bad_input_in_words(flat, capsys, args, message):
    code, _, err = run(capsys, "budgets", "add", "X", "--db", flat, *args)
    assert code == 1 and err.startswith("error: ") and message in err


def test_budgets_check_exits_3_when_an_alert_fires(flat, capsys):
    run(capsys, "budgets", "add", "Prod", "--db", flat, "--amount", "100000", "--scope",
        f"project:{PROD}")
    code, out, _ = run(capsys, "budgets", "check", "--db", flat)
    assert code == 0 and "crossed:  none" in out and "forecast: none" in out

    run(capsys, "budgets", "add", "Dev", "--db", flat, "--amount", "245", "--scope",
        f"project:{DEV}")
    code, out, err = run(capsys, "budgets", "check", "--db", flat)
    assert code == 3
    assert "crossed:  50% (notify)" in out
    assert "forecast: 75% (page on-call), 90% (freeze development)" in out
    assert "4 new alert(s) stored" in err
    code, out, err = run(capsys, "budgets", "check", "--db", flat, "--format", "json")
    assert code == 3 and "new alert" not in err, "still firing, nothing new"
    rows = {r["budget"]: r for r in json.loads(out)}
    assert rows["Dev"]["crossed_actual"] == "50% notify"
    assert rows["Prod"]["crossed_actual"] == ""
