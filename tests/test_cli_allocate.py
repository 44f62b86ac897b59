"""``python -m analytics allocate``: split syntax, figures worked out by hand on the demo
organisation, and plain-language errors."""

import json
from datetime import date
from decimal import Decimal as D

import pytest

from analytics.access import Principal
from analytics.allocation import PlanError, Share, preset_plan
from analytics.cli import main
from analytics.cli_allocate import parse_split
from analytics.plans import save_plan
from tests.test_planning import PRESET_SPLIT, demo, env_truth  # noqa: F401  (a fixture)

PRESET_ENVS = ["Development", "Staging", "Production", "Analytics"]


def _run(demo, capsys, *args: str) -> tuple[int, str, str]:  # noqa: F811
    code = main(["allocate", "--db", demo.url, "--as-of", demo.as_of.isoformat(), *args])
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------- split syntax


def test_the_preset_split_with_the_preset_limits():
    assert parse_split(PRESET_SPLIT, []) == [
        Share("Development", "percent", D(20), "hard"),
        Share("Staging", "percent", D(10), "hard"),
        Share("Production", "percent", D(60), "soft"),
        Share("Analytics", "percent", D(10), "soft"),
    ]


def test_fixed_even_proportional_and_limits():
    shares = parse_split("dev=$1000, staging=even, Production=proportional, bi=20%",
                         ["BI"], "prod=hard,dev=soft")
    assert shares == [
        Share("Development", "fixed", D(1000), "soft"),
        Share("Staging", "even", None, "hard"),
        Share("Production", "proportional", None, "hard"),
        Share("BI", "percent", D(20), "soft"),  # an environment outside the preset: soft
    ]


@pytest.mark.parametrize(("split", "limits", "message"), [
    ("dev", "", "name=value pairs"),
    ("dev=lots", "", "The share for Development is 'lots'"),
    ("dev=20,stg=80", "", "Unknown environment 'stg'"),
    ("dev=20", "dev=firm", "The limit for Development is 'firm': use hard or soft"),
    ("dev=20", "prod=hard", "--limits names Production, which --split has no share for"),
])
def test_split_mistakes_are_named(split, limits, message):
    with pytest.raises(PlanError, match=message):
        parse_split(split, [], limits)


# --------------------------------------------------------------------------- on the demo


def test_json_figures_by_hand(demo, capsys):  # noqa: F811
    code, out, _ = _run(demo, capsys, "--total", "1300", "--split", PRESET_SPLIT,
                        "--reserve", "10", "--format", "json")
    assert code == 0
    report = json.loads(out)
    assert report["period"] == {"start": "2026-10-01", "end": "2026-10-31"}
    assert report["as_of"] == "2026-10-06"
    envs = [r for r in report["environments"] if r["level"] == "environment"]
    assert [r["environment"] for r in envs] == PRESET_ENVS
    # $1,300 less the 10% reserve is $1,170: 20/10/60/10 of it
    assert [r["allocation"] for r in envs] == [234.0, 117.0, 702.0, 117.0]
    assert report["reserve"]["allocation"] == 130.0
    spent = env_truth(demo.org, date(2026, 10, 1), date(2026, 10, 6))
    for row in envs:
        assert row["actual_to_date"] == pytest.approx(float(spent[row["environment"]]),
                                                      abs=0.006)
        assert row["low"] <= row["forecast"] <= row["high"]
        assert 0 <= row["p_overrun"] <= 1
    projects = [r for r in report["environments"] if r["level"] == "project"]
    assert sorted(r["project"] for r in projects) == sorted(
        ["Development", "Staging", "Production", "Marketing", "Analytics"])
    production = [r for r in projects if r["environment"] == "Production"]
    assert sum(r["actual_to_date"] for r in production) == pytest.approx(
        envs[2]["actual_to_date"], abs=0.011)


def test_table_says_it_in_words(demo, capsys):  # noqa: F811
    code, out, _ = _run(demo, capsys, "--total", "1300", "--split", PRESET_SPLIT)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == ("Plan 'Command line': $1,300.00 for 2026-10-01..2026-10-31, as of "
                        "2026-10-06 (19% of the period gone)")
    assert lines[1].split() == ["environment", "project", "limit", "allocation",
                                "actual_to_date", "forecast", "low", "high", "p_overrun",
                                "hits_allocation_on"]
    production = next(line for line in lines if line.startswith("Production"))
    assert production.split()[1:3] == ["soft", "702.00"]
    assert any(line.startswith("Reserve: $130.00 (10%); expected use $") for line in lines)
    assert any(line.startswith("warning: ") for line in lines)


def test_a_saved_plan_by_name(demo, capsys):  # noqa: F811
    save_plan(demo.engine, Principal("mark", "member"), preset_plan(D(2000), "Lean"), "2026-10")
    code, out, _ = _run(demo, capsys, "--plan", "Lean", "--format", "json")
    assert code == 0
    report = json.loads(out)
    assert report["plan"]["name"] == "Lean"
    assert report["reserve"]["allocation"] == 200.0
    code, _, err = _run(demo, capsys, "--plan", "Lean", "--total", "5")
    assert code == 1 and "drop --total or use --split" in err


@pytest.mark.parametrize(("args", "message"), [
    (["--total", "1300", "--split", "dev=20,staging=10,prod=70,analytics=10"],
     "error: Percent shares add up to 110%: reduce them by 10 points"),
    (["--total", "1300", "--split", "dev=50,prod=50"],
     "error: Spend was given for Analytics and Staging, which the plan 'Command line' has "
     "no share for"),
    (["--split", PRESET_SPLIT], "error: Give the period's budget with --total"),
    (["--total", "1300", "--split", "qa=100"], "error: Unknown environment 'qa'"),
    (["--plan", "Nope"], "error: There is no saved plan named 'Nope'"),
])
def test_mistakes_exit_1_with_one_plain_line(demo, capsys, args, message):  # noqa: F811
    code, out, err = _run(demo, capsys, *args)
    assert code == 1 and out == ""
    assert err.startswith(message) and len(err.strip().splitlines()) == 1
