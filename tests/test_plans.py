"""Saved allocation plans: who may save and activate, one active plan per period, audit rows."""

import json
from datetime import date
from decimal import Decimal as D

import pytest
from sqlalchemy import update

from analytics.access import AccessDenied, Principal
from analytics.allocation import Plan, PlanError, Share, preset_plan
from analytics.audit import entries
from analytics.budgets import Period
from analytics.plans import (
    activate_plan,
    active_plan,
    delete_plan,
    list_plans,
    load_plan,
    period_key,
    save_plan,
)
from analytics.store import NamedDocument

OWNER = Principal("olivia", "owner")
MEMBER = Principal("mark", "member")
READER = Principal("rita", "reader")
NOV, DEC = "2026-11", "2026-12"


def _plan(name: str, total: str = "1000") -> Plan:
    return preset_plan(D(total), name=name)


def _statuses(engine, period: str) -> dict[str, str]:
    return {s.plan.name: s.status for s in list_plans(engine, period)}


def test_period_key_is_the_month_or_the_anchored_start():
    assert period_key(Period(date(2026, 11, 1), date(2026, 11, 30))) == "2026-11"
    assert period_key(Period(date(2026, 10, 15), date(2026, 11, 14))) == "2026-10-15"


def test_member_saves_a_draft_that_loads_back_the_same(engine):
    saved = save_plan(engine, MEMBER, _plan("Lean"), NOV)
    assert saved.status == "draft" and saved.period == NOV
    loaded = load_plan(engine, "Lean")
    assert loaded.plan == _plan("Lean")
    assert (loaded.status, loaded.period, loaded.updated_by) == ("draft", NOV, "mark")
    audit = entries(engine, action="plan.save")
    assert list(audit["username"]) == ["mark"] and list(audit["target"]) == ["Lean"]
    assert json.loads(audit["after"][0])["plan"]["total"] == "1000"


def test_reader_cannot_save_and_nothing_is_written(engine):
    with pytest.raises(AccessDenied, match="Reader"):
        save_plan(engine, READER, _plan("Lean"), NOV)
    assert list_plans(engine) == []
    assert entries(engine).empty


def test_member_cannot_activate(engine):
    save_plan(engine, MEMBER, _plan("Lean"), NOV)
    with pytest.raises(AccessDenied, match="Only an Owner"):
        activate_plan(engine, MEMBER, "Lean")
    assert active_plan(engine, NOV) is None


def test_one_active_plan_per_period(engine):
    for name, period in (("A", NOV), ("B", NOV), ("C", DEC)):
        save_plan(engine, MEMBER, _plan(name), period)
    activate_plan(engine, OWNER, "A")
    activate_plan(engine, OWNER, "C")
    assert _statuses(engine, NOV) == {"A": "active", "B": "draft"}
    activate_plan(engine, OWNER, "B")
    assert _statuses(engine, NOV) == {"A": "draft", "B": "active"}
    assert active_plan(engine, DEC).plan.name == "C"  # another period keeps its own
    audit = entries(engine, action="plan.activate")
    assert json.loads(audit["before"][0]) == {"period": NOV, "active": ["A"]}
    assert json.loads(audit["after"][0]) == {"period": NOV, "active": "B"}


def test_activating_the_active_plan_again_changes_nothing(engine):
    save_plan(engine, MEMBER, _plan("A"), NOV)
    activate_plan(engine, OWNER, "A")
    activate_plan(engine, OWNER, "A")
    assert len(entries(engine, action="plan.activate")) == 1


def test_a_plan_that_does_not_add_up_is_not_activated(engine):
    over = Plan("Over", D(1000), D(10), [Share("Production", "percent", D(110), "soft")])
    save_plan(engine, MEMBER, over, NOV)  # a draft may be unfinished
    with pytest.raises(PlanError, match="110%: reduce them by 10 points"):
        activate_plan(engine, OWNER, "Over")
    assert _statuses(engine, NOV) == {"Over": "draft"}


def test_proportional_plan_needs_the_weights_to_activate(engine):
    plan = Plan("Prop", D(1000), D(10), [Share("Production", "proportional", None, "soft"),
                                          Share("Analytics", "proportional", None, "soft")])
    save_plan(engine, MEMBER, plan, NOV)
    with pytest.raises(PlanError, match="no spend figure"):
        activate_plan(engine, OWNER, "Prop")
    activate_plan(engine, OWNER, "Prop", {"Production": D(300), "Analytics": D(100)})
    assert active_plan(engine, NOV).plan.name == "Prop"


def test_an_existing_name_needs_replace(engine):
    save_plan(engine, MEMBER, _plan("A", "1000"), NOV)
    with pytest.raises(PlanError, match="exists already"):
        save_plan(engine, MEMBER, _plan("A", "2000"), NOV)
    save_plan(engine, MEMBER, _plan("A", "2000"), NOV, replace=True)
    assert load_plan(engine, "A").plan.total == D(2000)
    before = json.loads(entries(engine, action="plan.save")["before"][0])
    assert before["plan"]["total"] == "1000"


def test_only_an_owner_edits_the_active_plan_and_it_stays_active(engine):
    save_plan(engine, MEMBER, _plan("Live"), NOV)
    activate_plan(engine, OWNER, "Live")
    with pytest.raises(AccessDenied, match="Only an Owner can change the active plan"):
        save_plan(engine, MEMBER, _plan("Live", "5000"), NOV, replace=True)
    assert load_plan(engine, "Live").plan.total == D(1000)
    save_plan(engine, OWNER, _plan("Live", "5000"), NOV, replace=True)
    assert (load_plan(engine, "Live").status, load_plan(engine, "Live").plan.total) == (
        "active", D(5000))
    save_plan(engine, OWNER, _plan("Live", "5000"), DEC, replace=True)  # moved: a draft again
    assert load_plan(engine, "Live").status == "draft" and active_plan(engine, NOV) is None


def test_delete_drafts_and_only_an_owner_the_active_plan(engine):
    save_plan(engine, MEMBER, _plan("Draft"), NOV)
    save_plan(engine, MEMBER, _plan("Live"), NOV)
    activate_plan(engine, OWNER, "Live")
    delete_plan(engine, MEMBER, "Draft")
    with pytest.raises(AccessDenied, match="Only an Owner"):
        delete_plan(engine, MEMBER, "Live")
    with pytest.raises(AccessDenied):
        delete_plan(engine, READER, "Live")
    delete_plan(engine, OWNER, "Live")
    assert list_plans(engine) == []
    assert list(entries(engine, action="plan.delete")["target"]) == ["Live", "Draft"]


def test_list_puts_newest_period_and_the_active_plan_first(engine):
    for name, period in (("b", NOV), ("a", NOV), ("z", DEC), ("live", NOV)):
        save_plan(engine, MEMBER, _plan(name), period)
    activate_plan(engine, OWNER, "live")
    assert [s.plan.name for s in list_plans(engine)] == ["z", "live", "a", "b"]


@pytest.mark.parametrize(("name", "period", "message"), [
    ("  ", NOV, "Give the plan a name"),
    ("x" * 129, NOV, "at most 128"),
    ("ok", "November", "not a budget period"),
])
def test_bad_names_and_periods_are_refused(engine, name, period, message):
    with pytest.raises(PlanError, match=message):
        save_plan(engine, MEMBER, _plan(name), period)


def test_missing_and_damaged_plans_say_so(engine):
    with pytest.raises(PlanError, match="no saved plan named 'Nope'"):
        load_plan(engine, "Nope")
    with pytest.raises(PlanError, match="no saved plan"):
        activate_plan(engine, OWNER, "Nope")
    save_plan(engine, MEMBER, _plan("Broken"), NOV)
    table = NamedDocument.__table__
    with engine.begin() as conn:
        conn.execute(update(table).where(table.c.name == "Broken").values(body="{not json"))
    with pytest.raises(PlanError, match="damaged"):
        load_plan(engine, "Broken")
    with pytest.raises(PlanError, match="damaged"):
        activate_plan(engine, OWNER, "Broken")


def test_the_active_plan_cannot_be_saved_broken(engine):
    save_plan(engine, MEMBER, _plan("Live"), NOV)
    activate_plan(engine, OWNER, "Live")
    by_spend = Plan("Live", D(1000), D(10), [Share("Production", "proportional", None, "soft")])
    with pytest.raises(PlanError, match="no spend figure"):
        save_plan(engine, OWNER, by_spend, NOV, replace=True)
    assert load_plan(engine, "Live").plan == _plan("Live")
    save_plan(engine, OWNER, by_spend, NOV, replace=True, weights={"Production": D(1)})
    assert active_plan(engine, NOV).plan == by_spend
