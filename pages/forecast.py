"""Forecast & budgets: where this period's spend lands, how far to trust that, the budgets
against it, a saved pricing scenario's effect; Owners also edit budgets and alert delivery."""

from decimal import Decimal, InvalidOperation

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from analytics.access import AccessDenied
from analytics.alerts import (
    DeliveryError,
    DeliverySettings,
    check,
    checks_frame,
    delivery_settings,
    recent_alerts,
    run_check,
    save_delivery_settings,
)
from analytics.budget_store import budget_for, delete_budget, list_budgets, save_budget
from analytics.budgets import DEFAULT_THRESHOLDS, Budget, BudgetError, Threshold, limit_consequence
from analytics.forecast import ForecastError, ForecastResult
from analytics.forecasting import (
    backtest_summary,
    cumulative_actual,
    forecast_scopes,
    scenario_forecast,
)
from analytics.org import ENVIRONMENTS, anchor_day
from analytics.pricing import ScenarioError
from analytics.queries import projects
from analytics.scenarios import list_scenarios, load_scenario
from ui.charts import LAYOUT
from ui.session import engine, money, principal

eng, who = engine(), principal()
st.title("Forecast & budgets")
budgets = list_budgets(eng, who)
visible = projects(eng, who)
names = dict(zip(visible["project_id"], visible["name"].fillna(visible["project_id"]),
                 strict=True))


def _chart(scope: str, f: ForecastResult, budget: Budget | None, title: str,
           height: int = 420) -> go.Figure:
    """Cumulative spend: the actual line to date, the forecast path and its 80% band to the
    period end, and the budget as a flat line."""
    actual = cumulative_actual(eng, who, scope, f)
    path = f.daily_path
    # The forecast lines start from the last actual point, so the chart has no gap.
    lead_x, lead_y = ([pd.Timestamp(f.as_of)], [f.actual_to_date]) if not actual.empty else ([], [])
    xs = lead_x + list(path["ds"])

    def line(column: str) -> list[float]:
        return lead_y + list(path[column])

    traces = [
        go.Scatter(x=xs, y=line("high_cumulative"), mode="lines", line=dict(width=0),
                   showlegend=False, hoverinfo="skip"),
        go.Scatter(x=xs, y=line("low_cumulative"), mode="lines", line=dict(width=0),
                   fill="tonexty", fillcolor="rgba(99,110,250,0.22)", name="80% band",
                   hoverinfo="skip"),
        go.Scatter(x=xs, y=line("expected_cumulative"), mode="lines",
                   line=dict(color="#636efa", dash="dash"), name="Forecast",
                   hovertemplate="forecast $%{y:,.2f}<extra></extra>"),
        go.Scatter(x=[pd.Timestamp(d) for d in actual.index], y=actual.to_numpy(), mode="lines",
                   line=dict(color="#222", width=3), name="Actual to date",
                   hovertemplate="actual $%{y:,.2f}<extra></extra>"),
    ]
    if budget is not None:
        traces.append(go.Scatter(
            x=[pd.Timestamp(f.period_start), pd.Timestamp(f.period_end)],
            y=[float(budget.amount)] * 2, mode="lines", line=dict(color="#d62728", dash="dot"),
            name=f"Budget {money(budget.amount)}",
            hovertemplate="budget $%{y:,.2f}<extra></extra>"))
    # One constructor call: add_trace / update_* re-validate the whole figure each time,
    # three times the cost, and the page draws one chart per project.
    return go.Figure(data=traces, layout=dict(
        **LAYOUT, title=title, height=height,
        yaxis=dict(tickprefix="$", tickformat=",.0f", title="Cumulative spend (USD)",
                   rangemode="tozero"),
        xaxis=dict(range=[pd.Timestamp(f.period_start), pd.Timestamp(f.period_end)])))


def _signed(value: float) -> str:
    """"-$5.10" / "+$5.10": st.metric reads the sign from the first character."""
    return ("-" if value < 0 else "+") + money(abs(value))


# --- the organisation (or, for a project-limited user, their projects) -------------------

# Every chart's forecast in one call: the projects' are read in one query and computed in
# parallel (and cached), each in its budget's billing calendar when it has one.
charted = ["org"] + [f"project:{p}" for p in visible["project_id"]]
try:
    with st.spinner("Forecasting the period end…"):
        forecasts = forecast_scopes(eng, who, charted, kind="month", anchor_days={
            s: b.anchor_day for s in charted if (b := budget_for(budgets, s)) is not None})
    org = forecasts["org"]
    if isinstance(org, ForecastError):
        raise org
except ForecastError as exc:
    st.info(f"{exc} " + ("Import data on the **Import** page." if who.can_import else ""))
    st.stop()
org_budget = budget_for(budgets, "org")

who_label = "the organisation" if who.projects is None else "your projects"
st.caption(f"Billing period {org.period_start:%d %b %Y} – {org.period_end:%d %b %Y}, "
           f"billed data up to {org.as_of:%d %b %Y}. Forecasts use only billed cost; days "
           "not yet exported are unknown, not $0.")
m1, m2, m3 = st.columns(3)
m1.metric("Spent so far", money(org.actual_to_date))
m2.metric("Forecast at period end", money(org.forecast))
m2.caption(f"80% interval {money(org.low)} – {money(org.high)}"
           + (" · rough: under two weeks of history" if org.rough else ""))
checks = check(eng, who)
org_status = next((c.status for c in checks if c.budget == org_budget), None)
if org_budget is not None and org_status is not None:
    status = org_status
    m3.metric(f"Budget '{org_budget.name}'", money(org_budget.amount),
              delta=f"{money(abs(status.headroom_usd))} "
                    f"{'headroom' if status.headroom_usd >= 0 else 'over'} at period end",
              delta_color="normal" if status.headroom_usd >= 0 else "inverse")
    m3.caption(f"Chance of ending over: {status.p_over_budget:.0%}" + (
        f" · crossed around {status.breach_date:%d %b}" if status.breach_date else ""))
else:
    m3.metric("Budget", "none set")
st.plotly_chart(_chart("org", org, org_budget,
                       f"Spend this period for {who_label}: actual, forecast and budget"),
                width="stretch")

try:
    accuracy = backtest_summary(eng, who)
except ForecastError as exc:
    st.caption(f"Forecast accuracy: not measured yet ({exc})")
else:
    st.info(f"**How far to trust it.** {accuracy.summary()} (The same method, replayed "
            f"mid-period on {who_label}'s own history with only the data known on that day.)")

# --- a saved pricing scenario ------------------------------------------------------------

st.subheader("Under a saved pricing scenario")
saved = list_scenarios(eng)
if saved.empty:
    st.caption("No saved scenarios: save one on **What-if pricing** (a new price list or a "
               "model migration) to see its effect on this forecast.")
else:
    chosen = st.selectbox("Scenario", list(saved["name"]))
    try:
        effect = scenario_forecast(eng, who, load_scenario(eng, chosen))
    except (ScenarioError, ForecastError, AccessDenied) as exc:
        st.info(str(exc))
    else:
        s1, s2 = st.columns(2)
        s1.metric("Forecast, current prices", money(org.forecast))
        s1.caption(f"80% interval {money(org.low)} – {money(org.high)}")
        s2.metric(f"Forecast under '{chosen}'", money(effect.forecast),
                  delta=_signed(effect.difference_usd), delta_color="inverse")
        s2.caption(f"80% interval {money(effect.low)} – {money(effect.high)}")
        st.caption(f"Method: the spend still to come this period (forecast − "
                   f"{money(org.actual_to_date)} already spent) is multiplied by "
                   f"{effect.ratio:.3f}, the scenario / current list-price cost of the last 28 "
                   "days of usage; spend already made is unchanged. A price change moves the "
                   "period-end figure before any usage changes.")

# --- each project -------------------------------------------------------------------------

st.subheader("By project")
columns = st.columns(2)
for i, project_id in enumerate(visible["project_id"]):
    scope = f"project:{project_id}"
    box, f, budget = columns[i % 2], forecasts[scope], budget_for(budgets, scope)
    if isinstance(f, ForecastError):
        box.caption(f"{names[project_id]}: {f}")
        continue
    box.plotly_chart(_chart(scope, f, budget,
                            f"{names[project_id]}: {money(f.forecast)} forecast "
                            f"({money(f.low)} – {money(f.high)})", height=320),
                     width="stretch", key=f"chart_{project_id}")

# --- budgets --------------------------------------------------------------------------------

st.subheader("Budgets")
if not checks:
    st.caption("No budgets set." + ("" if who.is_owner else " An Owner sets budgets."))
else:
    table = checks_frame(checks).astype({"amount_usd": float, "reserve_pct": float})
    dollars = {c: st.column_config.NumberColumn(label, format="dollar") for c, label in (
        ("amount_usd", "Budget"), ("actual_usd", "Spent"), ("forecast_usd", "Forecast"),
        ("headroom_usd", "Headroom at end"))}
    st.dataframe(table, hide_index=True, width="stretch", column_config=dollars | {
        "budget": "Budget name", "scope": "For", "period": "Period", "limit": "Limit",
        "period_start": "From", "period_end": "To",
        "p_over_budget": st.column_config.ProgressColumn("Chance over", format="percent",
                                                         min_value=0, max_value=1),
        "breach_date": "Crossed around",
        "crossed_actual": "Crossed (actual)", "crossed_forecast": "Will cross (forecast)",
        "reserve_pct": st.column_config.NumberColumn("Reserve", format="%.0f%%"),
        "note": "Note"})
    for c in checks:
        for a in c.alerts:
            (st.error if a.level == "critical" else st.warning)(
                f"{'Forecast' if a.basis == 'forecast' else 'Actual'}: {a.message}")
    for limit in sorted({c.budget.limit for c in checks}):
        st.caption(limit_consequence(limit))

history = recent_alerts(eng, who, limit=50)
with st.expander(f"Alert history ({len(history)})"):
    if history.empty:
        st.caption("No alerts raised yet.")
    else:
        st.dataframe(history, hide_index=True, width="stretch")

if not who.is_owner:
    st.caption("Only an Owner can set budgets and alert delivery.")
    st.stop()

# --- Owner: budget editor ------------------------------------------------------------------

st.subheader("Set a budget")
scopes = {"org": "Whole organisation"} | {
    f"project:{p}": f"Project: {names[p]}" for p in visible["project_id"]} | {
    f"env:{e}": f"Environment: {e}" for e in sorted(
        set(ENVIRONMENTS) | set(visible["environment"].dropna()))}
with st.form("budget_editor"):
    c1, c2, c3 = st.columns(3)
    b_name = c1.text_input("Name", placeholder="e.g. Org monthly")
    b_scope = c2.selectbox("For", list(scopes), format_func=scopes.get)
    b_amount = c3.text_input("Amount per period (USD)", placeholder="5000")
    c4, c5, c6 = st.columns(3)
    b_kind = c4.selectbox("Period", ["month", "quarter", "year"])
    b_anchor = c5.number_input("Period starts on day", 1, 31, value=anchor_day(eng),
                               help="1 = calendar periods; another day = billing anniversary")
    b_reserve = c6.number_input("Emergency reserve (% held back)", 0.0, 99.0, 0.0, step=5.0)
    b_limit = st.radio("Limit", ["soft", "hard"], horizontal=True,
                       captions=[limit_consequence("soft"), limit_consequence("hard")])
    b_thresholds = st.data_editor(
        pd.DataFrame([{"pct": t.pct, "action": t.action} for t in DEFAULT_THRESHOLDS]),
        num_rows="dynamic", hide_index=True, key="thresholds",
        column_config={"pct": st.column_config.NumberColumn("At % of budget", min_value=1,
                                                            max_value=100, step=1),
                       "action": st.column_config.TextColumn("Action")})
    b_replace = st.checkbox("Replace a budget of this name")
    if st.form_submit_button("Save budget", type="primary"):
        try:
            amount = Decimal(b_amount.replace(",", "").replace("$", "").strip() or "0")
            rows = b_thresholds.dropna(subset=["pct"])
            save_budget(eng, who, Budget(
                name=b_name.strip(), amount=amount, kind=b_kind, anchor_day=int(b_anchor),
                scope=b_scope, limit=b_limit, reserve_pct=Decimal(str(b_reserve)),
                thresholds=tuple(Threshold(int(r.pct), r.action.strip() if isinstance(
                    r.action, str) and r.action.strip() else "notify")
                    for r in rows.itertuples())), replace=b_replace)
        except InvalidOperation:
            st.error(f"The amount '{b_amount}' is not a number.")
        except (BudgetError, AccessDenied) as exc:
            st.error(str(exc))
        else:
            st.success(f"Saved budget '{b_name.strip()}'.")
            st.rerun()

if budgets:
    c1, c2 = st.columns([3, 1])
    doomed = c1.selectbox("Delete a budget", [b.name for b in budgets], index=None)
    if c2.button("Delete budget", disabled=doomed is None) and doomed is not None:
        delete_budget(eng, who, doomed)
        st.rerun()

# --- Owner: alert delivery --------------------------------------------------------------------

st.subheader("Alert delivery")
st.caption("Alerts always appear here. They can also go to a Slack-compatible webhook and by "
           "email; the SMTP password is read from the server's BURNRATE_SMTP_PASSWORD "
           "environment variable, never stored. Schedule `python -m analytics budgets check` "
           "(exit code 3 when an alert fires) to check without opening this page.")
current = delivery_settings(eng)
with st.form("delivery"):
    hook = st.text_input("Webhook URL", value=current.webhook_url,
                         placeholder="https://hooks.slack.com/services/…")
    c1, c2, c3 = st.columns(3)
    host = c1.text_input("SMTP server", value=current.smtp_host)
    port = c2.number_input("SMTP port", 1, 65535, value=current.smtp_port)
    tls = c3.checkbox("STARTTLS", value=current.starttls)
    sender = c1.text_input("From", value=current.email_from)
    to = c2.text_input("To (comma separated)", value=", ".join(current.email_to))
    if st.form_submit_button("Save delivery settings"):
        try:
            save_delivery_settings(eng, who, DeliverySettings(
                webhook_url=hook.strip(), smtp_host=host.strip(), smtp_port=int(port),
                email_from=sender.strip(), starttls=tls,
                email_to=tuple(a.strip() for a in to.split(",") if a.strip())))
        except DeliveryError as exc:
            st.error(str(exc))
        else:
            st.success("Saved.")

if st.button("Check budgets now and send new alerts"):
    run = run_check(eng, who)
    st.success(f"{len(run.new_alerts)} new alert(s)." if run.new_alerts
               else "No new alerts since the last check.")
    for line in run.delivery:
        (st.warning if "failed" in line else st.caption)(line)
