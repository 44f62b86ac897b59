"""The Allocation page for each role, and the environment guess in Settings (AppTest)."""

from decimal import Decimal as D

import pytest

from analytics.access import Principal
from analytics.allocation import preset_plan
from analytics.org import label_project
from analytics.plans import active_plan, load_plan, save_plan
from analytics.queries import projects
from tests.test_planning import demo, logged_in  # noqa: F401  (a fixture)

SAVE, ACTIVATE = "Save draft", "Save and activate for 01 Oct – 31 Oct 2026"


def _button(at, label: str):
    found = [b for b in at.button if b.label == label]
    assert len(found) == 1, [b.label for b in at.button]
    return found[0]


def _input(elements, label: str):
    return next(e for e in elements if e.label.startswith(label))


@pytest.mark.parametrize("user", ["olivia", "mark", "rita"])
def test_every_role_sees_plan_vs_reality(demo, monkeypatch, user):  # noqa: F811
    at = logged_in(demo, monkeypatch, user)
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Allocation"]
    assert "Plan vs reality, 01 Oct – 31 Oct 2026" in [h.value for h in at.subheader]
    charts = at.get("plotly_chart")
    assert len(charts) == 1
    figure = charts[0].proto.spec
    assert "Allocation, spend so far and period-end forecast" in figure
    assert '"tickprefix":"$"' in figure.replace(" ", "")
    tables = [d.value for d in at.dataframe]
    assert any("actual_to_date" in t.columns for t in tables)
    assert any("Chance of overrun" in t.columns for t in tables)
    # Environments, then their projects: no cell left empty ("None") in either.
    envs = next(t for t in tables if "p_overrun" in t.columns)
    projects_table = next(t for t in tables if "project" in t.columns and "forecast" in t.columns)
    assert "allocation" not in projects_table.columns
    assert envs.notna().all().all() and projects_table.notna().all().all()


def test_reader_cannot_save(demo, monkeypatch):  # noqa: F811
    at = logged_in(demo, monkeypatch, "rita")
    assert _button(at, SAVE).disabled and _button(at, ACTIVATE).disabled
    assert any("a Member saves drafts and an Owner activates" in c.value for c in at.caption)


def test_member_saves_a_draft_but_cannot_activate(demo, monkeypatch):  # noqa: F811
    at = logged_in(demo, monkeypatch, "mark")
    assert _button(at, ACTIVATE).disabled and not _button(at, SAVE).disabled
    _input(at.text_input, "Plan name").set_value("Mark's draft").run()
    _button(at, SAVE).click().run()
    assert not at.exception, at.exception
    saved = load_plan(demo.engine, "Mark's draft")
    assert (saved.status, saved.period, saved.updated_by) == ("draft", "2026-10", "mark")
    assert [s.value for s in at.success] == ["Saved 'Mark's draft' for 01 Oct – 31 Oct 2026."]


def test_owner_activates_the_edited_plan(demo, monkeypatch):  # noqa: F811
    at = logged_in(demo, monkeypatch, "olivia")
    _input(at.text_input, "Plan name").set_value("October").run()
    _input(at.number_input, "Budget").set_value(1500.0).run()
    _button(at, ACTIVATE).click().run()
    assert not at.exception, at.exception
    active = active_plan(demo.engine, "2026-10")
    assert active is not None and active.plan.name == "October"
    assert active.plan.total == D(1500) and active.updated_by == "olivia"


def test_a_budget_that_does_not_add_up_is_explained_and_cannot_be_activated(
        demo, monkeypatch):  # noqa: F811
    at = logged_in(demo, monkeypatch, "olivia")
    _input(at.number_input, "Budget").set_value(0.0).run()
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1
    assert "The budget total must be more than $0 (it is $0.00)" in errors[0]
    assert _button(at, ACTIVATE).disabled
    assert not [d for d in at.dataframe if "actual_to_date" in d.value.columns]


def test_open_a_saved_plan(demo, monkeypatch):  # noqa: F811
    save_plan(demo.engine, Principal("mark", "member"), preset_plan(D(4321), "Big"), "2026-10")
    at = logged_in(demo, monkeypatch, "rita")
    _input(at.selectbox, "Saved plans").set_value("Big (draft, 2026-10)").run()
    _button(at, "Open").click().run()
    assert not at.exception, at.exception
    assert _input(at.text_input, "Plan name").value == "Big"
    assert _input(at.number_input, "Budget").value == 4321.0


def test_suggested_split_has_no_more_cut_offs(demo, monkeypatch):  # noqa: F811
    at = logged_in(demo, monkeypatch, "rita")
    _input(at.number_input, "Budget").set_value(1300.0).run()
    _button(at, "Suggest the split with the least chance of a cut-off").click().run()
    assert not at.exception, at.exception
    chances = [m.value for m in at.markdown if m.value.startswith("Chance a hard-limited")]
    assert len(chances) == 2  # this split, then the suggested one

    def cut_off(text: str) -> int:
        return int(text.split("**")[1].rstrip("%"))

    assert cut_off(chances[1]) <= cut_off(chances[0])
    _button(at, "Use the suggested split").click().run()
    assert not at.exception, at.exception
    assert [m.value for m in at.markdown if m.value.startswith("Chance a hard-limited")][0] \
        == chances[1]


def test_settings_suggests_empty_environments(demo, monkeypatch):  # noqa: F811
    staging = "proj_demoStaging000000002"
    owner = Principal("olivia", "owner")
    label_project(demo.engine, owner, "openai", staging, "Staging", None)
    at = logged_in(demo, monkeypatch, "olivia").switch_page("pages/settings.py").run()
    _button(at, "Suggest environments").click().run()
    assert not at.exception, at.exception
    assert any(i.value.startswith("Suggested 1 environment from project names")
               for i in at.info)
    _button(at, "Save project labels").click().run()
    table = projects(demo.engine, owner).set_index("project_id")
    assert table.loc[staging, "environment"] == "Staging"
