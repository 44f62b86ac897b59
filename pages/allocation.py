"""Allocation: split the period's budget across environments, see the split against spend and
forecasts, and simulate other splits. The figures come from analytics.planning, as do those of
``python -m analytics allocate``."""

from datetime import date
from decimal import Decimal, InvalidOperation

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from analytics import planning
from analytics.access import AccessDenied
from analytics.allocation import (
    LIMITS,
    METHODS,
    RESERVE,
    UNALLOCATED,
    Plan,
    PlanError,
    Share,
    SimResult,
    preset_plan,
    validate,
)
from analytics.forecast import ForecastError
from analytics.plans import (
    activate_plan,
    active_plan,
    list_plans,
    load_plan,
    period_key,
    save_plan,
)
from analytics.queries import data_range
from ui.charts import LAYOUT
from ui.session import engine, money, principal

LABELS = {"percent": "Percent", "fixed": "Fixed $", "proportional": "Proportional",
          "even": "Even"}
METHOD_OF = {label: method for method, label in LABELS.items()}

eng, who = engine(), principal()
st.title("Allocation")
first, last = data_range(eng, who)
if last is None:
    st.info("No data yet: import provider exports first.")
    st.stop()

left, right = st.columns([1, 3], vertical_alignment="bottom")
as_of = left.date_input("As of", value=last, min_value=first, max_value=last,
                        help="Spend up to this day is actual; the rest of the period is "
                             "forecast.")
try:
    with st.spinner("Forecasting each environment's period end…"):
        # The newest day is asked for as the default, so the outlook refreshed in the
        # background after an import is the one this page opens with.
        view = planning.outlook(eng, who, None if as_of == last else as_of)
except ForecastError as exc:
    st.info(str(exc))
    st.stop()
period = view.period
period_name = f"{period.start:%d %b} – {period.end:%d %b %Y}"
key = period_key(period)
right.caption(f"Budget period {period_name} · {view.fraction_elapsed:.0%} gone by "
              f"{view.as_of:%d %b}")


def _starting_plan() -> tuple[Plan, str | None]:
    """The period's active plan, else the preset on a budget that covers the forecast, with
    any other environment that has projects added at 0% so its spend is not missed."""
    active = active_plan(eng, key)
    if active is not None:
        return active.plan, active.plan.name
    plan = preset_plan(planning.starting_total(view))
    planned = {s.environment for s in plan.shares}
    extra = [Share(env, "percent", Decimal(0), "soft") for env in view.environments
             if env not in planned]
    return Plan(plan.name, plan.total, plan.reserve_pct, plan.shares + extra), None


def _load(plan: Plan, name: str | None) -> None:
    """Put a plan in the editor (widget keys carry a revision, so the widgets reset)."""
    st.session_state["alloc_plan"] = plan
    st.session_state["alloc_loaded"] = name
    st.session_state["alloc_rev"] = st.session_state.get("alloc_rev", 0) + 1


def _open(plan_name: str | None) -> None:
    if plan_name is not None:
        _load(load_plan(eng, plan_name).plan, plan_name)


if "alloc_plan" not in st.session_state:
    _load(*_starting_plan())
rev = st.session_state["alloc_rev"]
base: Plan = st.session_state["alloc_plan"]

# --------------------------------------------------------------------------- the editor

st.subheader("Plan")
saved = list_plans(eng)
c1, c2, c3 = st.columns([3, 1, 2], vertical_alignment="bottom")
labels = {f"{s.plan.name} ({s.status}, {s.period})": s.plan.name for s in saved}
opened = c1.selectbox("Saved plans", list(labels), index=None,
                      placeholder="Open a saved plan" if saved else "No saved plans yet")
c2.button("Open", disabled=opened is None, on_click=_open, args=(labels.get(opened or ""),))
c3.button("Start from the 20/10/60/10 preset", on_click=_load,
          args=(preset_plan(base.total), None))

c1, c2, c3 = st.columns([2, 1, 1])
name = c1.text_input("Plan name", value=base.name, key=f"alloc_name_{rev}")
total = c2.number_input("Budget for the period (USD)", min_value=0.0, step=100.0,
                        value=float(base.total), format="%.2f", key=f"alloc_total_{rev}")
reserve = c3.number_input("Reserve (% of the budget)", min_value=0.0, max_value=99.0,
                          step=1.0, value=float(base.reserve_pct), key=f"alloc_reserve_{rev}")
weights_text = ", ".join(f"{env} {money(w)}" for env, w in view.weights.items())
qp = view.weights_period
st.caption(
    "**Percent** is a share of the budget after the reserve; **Fixed $** an amount in dollars. "
    "**Even** and **Proportional** shares split what those leave: an equal slot each, the "
    "proportional slots pooled and split by last quarter's spend "
    f"({qp.start:%d %b} – {qp.end:%d %b %Y}: {weights_text or 'none'}); they take no value. "
    "A **hard** limit refuses requests past it; a **soft** one alerts and draws on the reserve.")
edited = st.data_editor(
    pd.DataFrame([{"Environment": s.environment, "Split": LABELS[s.method],
                   "Value": None if s.value is None else float(s.value), "Limit": s.limit}
                  for s in base.shares]),
    key=f"alloc_shares_{rev}", hide_index=True, width="stretch", num_rows="dynamic",
    column_config={
        "Environment": st.column_config.TextColumn(required=True),
        "Split": st.column_config.SelectboxColumn(
            options=[LABELS[m] for m in METHODS], required=True, default="Percent"),
        "Value": st.column_config.NumberColumn(
            help="Percent for Percent shares, dollars for Fixed $; empty for Even and "
                 "Proportional", min_value=0.0),
        "Limit": st.column_config.SelectboxColumn(options=list(LIMITS), required=True,
                                                  default="soft"),
    })


def _decimal(value: object) -> Decimal | None:
    if value is None or pd.isna(value):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _edited_plan() -> Plan:
    shares = []
    for row in edited.itertuples(index=False):
        env = "" if pd.isna(row.Environment) else str(row.Environment).strip()
        method = METHOD_OF.get(row.Split, "percent")
        if not env and pd.isna(row.Value):
            continue  # a row added and left empty
        value = _decimal(row.Value) if method in ("percent", "fixed") else None
        shares.append(Share(env, method, value, row.Limit if row.Limit in LIMITS else "soft"))
    return Plan(name.strip(), Decimal(str(round(total, 2))), Decimal(str(reserve)), shares)


plan = _edited_plan()
problems = validate(plan, view.weights)
try:
    result = planning.review_plan(plan, view)
except PlanError as exc:
    result = None
    st.error("This plan does not add up yet:\n" + "\n".join(f"- {p}" for p in problems or
                                                            [str(exc)]))
else:
    for problem in problems:
        st.warning(problem)
    amounts = [(s.environment, result.allocations[s.environment]) for s in plan.shares]
    amounts.append(("Reserve", result.allocations[RESERVE]))
    if UNALLOCATED in result.allocations:
        amounts.append(("Unallocated", result.allocations[UNALLOCATED]))
    st.write(" · ".join(f"{env} **{money(amount)}**" for env, amount in amounts))

c1, c2 = st.columns(2)
loaded = st.session_state["alloc_loaded"]
if c1.button("Save draft", disabled=not who.can_import, key="alloc_save",
             help=None if who.can_import else "A Reader cannot save plans"):
    try:
        save_plan(eng, who, plan, key, replace=plan.name == loaded, weights=view.weights)
        st.session_state["alloc_loaded"] = plan.name
        st.success(f"Saved '{plan.name}' for {period_name}.")
    except (PlanError, AccessDenied) as exc:
        st.error(str(exc))
if c2.button(f"Save and activate for {period_name}", key="alloc_activate",
             disabled=not who.is_owner or result is None,
             help=None if who.is_owner else "Only an Owner activates a plan"):
    try:
        save_plan(eng, who, plan, key, replace=plan.name == loaded, weights=view.weights)
        activate_plan(eng, who, plan.name, view.weights)
        st.session_state["alloc_loaded"] = plan.name
        st.success(f"'{plan.name}' is now the active plan for {period_name}.")
    except (PlanError, AccessDenied) as exc:
        st.error(str(exc))
if not who.can_import:
    st.caption("Readers can try plans here; a Member saves drafts and an Owner activates them.")
elif not who.is_owner:
    st.caption("Members save drafts; an Owner activates the plan for the period.")
if result is None:
    st.stop()

# --------------------------------------------------------------------------- plan vs reality

st.subheader(f"Plan vs reality, {period_name}")
m1, m2, m3, m4, m5 = st.columns(5)
m1.metric("Budget", money(plan.total))
m2.metric("Spent so far", money(sum(s.actual for s in result.statuses)))
m3.metric("Forecast at period end", money(sum(s.forecast for s in result.statuses)))
m4.metric("Reserve expected use", money(result.reserve.expected_use),
          help="The mean, over the simulated months, of what soft-limited overruns take.")
m5.metric("Chance the reserve runs out", f"{result.reserve.p_exhausted:.0%}")

statuses = result.statuses
envs = [s.environment for s in statuses]
fig = go.Figure()
fig.add_bar(name="Allocation", x=envs, y=[float(s.allocation) for s in statuses],
            marker_color="#9aa5b1")
fig.add_bar(name="Spent so far", x=envs, y=[s.actual for s in statuses], marker_color="#1f77b4")
fig.add_bar(name="Forecast (80% range)", x=envs, y=[s.forecast for s in statuses],
            marker_color="#ff7f0e",
            customdata=[[s.low, s.high] for s in statuses],
            error_y=dict(type="data", symmetric=False,
                         array=[s.high - s.forecast for s in statuses],
                         arrayminus=[s.forecast - s.low for s in statuses]))
fig.update_traces(hovertemplate="%{fullData.name}: $%{y:,.2f}<extra></extra>")
fig.update_traces(selector=dict(name="Forecast (80% range)"),
                  hovertemplate="Forecast: $%{y:,.2f} ($%{customdata[0]:,.2f} – "
                                "$%{customdata[1]:,.2f})<extra></extra>")
fig.update_layout(**LAYOUT, barmode="group",
                  title=f"Allocation, spend so far and period-end forecast ({period_name})")
fig.update_yaxes(title="USD", tickprefix="$", tickformat=",.0f")
st.plotly_chart(fig, width="stretch")

# Environments and their projects in two tables: a project has no allocation, limit or
# chance of its own, and one table would show "None" in those cells.
table = result.table()
money_columns = {c: st.column_config.NumberColumn(label, format="dollar") for c, label in (
    ("allocation", "Allocation"), ("actual_to_date", "Actual to date"),
    ("forecast", "Forecast"), ("low", "Low (10%)"), ("high", "High (90%)"))}
env_rows = table[table["level"] == "environment"].drop(columns=["level", "project"])
env_rows["allocation"] = [float(a) for a in env_rows["allocation"]]
env_rows["hits_allocation_on"] = [d.isoformat() if isinstance(d, date) else "not forecast to"
                                  for d in env_rows["hits_allocation_on"]]
st.dataframe(env_rows, hide_index=True, width="stretch", column_config={
    "environment": "Environment", "limit": "Limit", **money_columns,
    "p_overrun": st.column_config.NumberColumn("Chance of overrun", format="percent"),
    "hits_allocation_on": "Reaches allocation on"})
project_rows = table[table["level"] == "project"][
    ["environment", "project", "actual_to_date", "forecast", "low", "high"]]
project_rows["environment"] = project_rows["environment"].fillna("(no environment)")
st.caption("Each environment's projects:")
st.dataframe(project_rows, hide_index=True, width="stretch", column_config={
    "environment": "Environment", "project": "Project", **money_columns})
st.caption(f"Reserve {money(result.allocations[RESERVE])}: soft-limited overruns are expected "
           f"to use {money(result.reserve.expected_use)} of it, and in "
           f"{result.reserve.p_exhausted:.0%} of the simulated months they use it all. "
           "Hard-limited environments are cut off at their allocation instead.")
if result.flags:
    st.warning("\n".join(f"- {flag}" for flag in result.flags))

# --------------------------------------------------------------------------- simulation

st.subheader("Simulate another split")
allocatable = float(plan.total) * (100 - float(plan.reserve_pct)) / 100
st.caption(f"Shares are percents of the {money(allocatable)} left after the reserve; what "
           "they leave adds to the reserve. Chances are counted "
           f"over {max(a.size for a in view.samples(envs).values()):,} simulated months from "
           "the forecasts.")
limits = {s.environment: s.limit for s in plan.shares}
start_pct = planning.plan_percents(plan, result.allocations)


def _use(split: dict[str, float]) -> None:
    """Set the sliders (before they are drawn, so no widget is given two values)."""
    for env, pct in split.items():
        st.session_state[f"alloc_sim_{env}_{rev}"] = int(round(pct))


def _apply(split: dict[str, float]) -> None:
    """Make the simulated split the plan's, as percent shares."""
    shares = [Share(env, "percent", Decimal(pct), limits[env]) for env, pct in split.items()]
    _load(Plan(plan.name, plan.total, plan.reserve_pct, shares), loaded)


_use({env: pct for env, pct in start_pct.items()
      if f"alloc_sim_{env}_{rev}" not in st.session_state})
columns = st.columns(len(envs))
shares_pct = {env: col.slider(f"{env} ({limits[env]})", 0, 100, format="%d%%",
                              key=f"alloc_sim_{env}_{rev}")
              for env, col in zip(envs, columns, strict=True)}
c1, c2 = st.columns(2)
c1.button("Reset to the plan's split", on_click=_use, args=(start_pct,))
c2.button("Use these shares in the plan", on_click=_apply, args=(shares_pct,))
if sum(shares_pct.values()) > 100:
    st.error(f"The shares add up to {sum(shares_pct.values())}%: take "
             f"{sum(shares_pct.values()) - 100} points off.")
    st.stop()


def _outcome_table(split: dict[str, float]) -> tuple[pd.DataFrame, SimResult]:
    sim = planning.simulate_split(view, split, plan.total, plan.reserve_pct, limits)
    frame = pd.DataFrame({"Environment": list(split), "Limit": [limits[e] for e in split],
                          "Share": [split[e] / 100 for e in split],
                          "Allocation": [sim.allocations[e] for e in split],
                          "Chance of overrun": [sim.p_overrun[e] for e in split]})
    return frame, sim


SIM_COLUMNS = {"Share": st.column_config.NumberColumn(format="percent"),
               "Allocation": st.column_config.NumberColumn(format="dollar"),
               "Chance of overrun": st.column_config.NumberColumn(format="percent")}


def _show_outcome(where: DeltaGenerator, title: str, split: dict[str, float]) -> None:
    frame, sim = _outcome_table(split)
    where.markdown(f"**{title}**")
    where.dataframe(frame, hide_index=True, width="stretch", column_config=SIM_COLUMNS)
    where.write(f"Chance a hard-limited environment is cut off: **{sim.p_any_hard_cutoff:.0%}**"
                f" · reserve runs out: **{sim.reserve.p_exhausted:.0%}** · expected reserve "
                f"use: **{money(sim.reserve.expected_use)}**")


left, right = st.columns(2)
_show_outcome(left, "This split", shares_pct)
asked = (view.as_of, plan.total, plan.reserve_pct, tuple(limits.items()))
if right.button("Suggest the split with the least chance of a cut-off", key="alloc_suggest"):
    st.session_state["alloc_suggested"] = (asked, planning.suggest(
        view, envs, plan.total, plan.reserve_pct, limits))
question, suggested = st.session_state.get("alloc_suggested", (None, None))
if suggested is not None and question == asked:
    _show_outcome(right, "Suggested split", suggested)
    right.button("Use the suggested split", on_click=_use, args=(suggested,))
