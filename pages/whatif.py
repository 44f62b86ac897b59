"""What-if pricing: re-cost a period's usage under another price list or a model migration,
see the difference by project, model and month and on this period's forecast; save it."""

from datetime import UTC, date, datetime, timedelta

import plotly.express as px
import streamlit as st
from sqlalchemy import Engine

from analytics.access import AccessDenied, Principal
from analytics.exports import dollars
from analytics.forecast import ForecastError
from analytics.org import anchor_day
from analytics.price_store import current_book
from analytics.pricing import (
    MigrationScenario,
    PriceBookError,
    PriceListScenario,
    ScenarioError,
    load_price_book,
    price_table,
    scenario_from_json,
    scenario_to_json,
)
from analytics.queries import data_range, projects
from analytics.scenarios import (
    ForecastEffect,
    delete_scenario,
    edited_price_list,
    families_in_use,
    forecast_effect,
    list_scenarios,
    load_scenario,
    run_scenario,
    save_scenario,
)
from ui.charts import LAYOUT
from ui.session import engine, money, principal

eng, who = engine(), principal()

st.title("What-if pricing")
first, last = data_range(eng, who)
if last is None:
    st.info("No data yet.")
    st.stop()


@st.cache_data(ttl=600, show_spinner="Forecasting the period end…")
def _effect(scope: str, scenario_json: str, as_of: date, anchor: int, _eng: Engine,
            _who: Principal) -> ForecastEffect:
    del scope  # part of the cache key only: never share a forecast across scopes
    return forecast_effect(_eng, _who, scenario_from_json(scenario_json), as_of, anchor)


span = st.date_input("Usage period", value=(max(first, last - timedelta(days=29)), last),
                     min_value=first, max_value=last)
if not isinstance(span, tuple) or len(span) != 2:
    st.info("Pick the last day of the period.")
    st.stop()
start, end = span
book = current_book(eng)
visible = projects(eng, who)
names = dict(zip(visible["project_id"], visible["name"].fillna(visible["project_id"]),
                 strict=True))
saved = list_scenarios(eng)
kinds = ["Move traffic to another model", "Another price list"] + (
    ["A saved scenario"] if not saved.empty else [])
kind = st.radio("Scenario", kinds, horizontal=True)


def _choose_scenario() -> PriceListScenario | MigrationScenario | None:
    """The scenario the widgets describe; None (with a note) until it is complete."""
    if kind == kinds[0]:
        used = families_in_use(eng, who, start, end)
        if not used:
            st.info("There is no usage in this period to move.")
            return None
        targets = sorted(set(price_table(book, end).query("status == 'in effect'")["family"]))
        c1, c2, c3 = st.columns(3)
        source = c1.selectbox("Move traffic of", used,
                              index=used.index("gpt-4o") if "gpt-4o" in used else 0)
        target = c2.selectbox("To", [t for t in targets if t != source],
                              index=None, placeholder="choose a model family")
        share = c3.slider("Share moved", 0, 100, 70, step=5, format="%d%%")
        chosen = st.multiselect("Only in projects (empty: all)", list(names),
                                format_func=lambda p: names.get(p, p))
        if target is None:
            st.info("Choose the model family to move the traffic to.")
            return None
        return MigrationScenario(source, target, share / 100, project_ids=tuple(chosen) or None)
    if kind == kinds[1]:
        upload = st.file_uploader("Upload a price file (CSV, the price book's columns)",
                                  type="csv")
        if upload is not None:
            return PriceListScenario(load_price_book(upload), upload.name)
        st.caption("Or edit prices below: changed rows apply to the whole period.")
        original = price_table(book, end).query("status == 'in effect'").drop(
            columns="status").reset_index(drop=True)
        edited = st.data_editor(
            original, hide_index=True, width="stretch", key="price_editor",
            disabled=["provider", "family", "service_tier", "effective_from", "unit",
                      "source", "source_date"])
        return edited_price_list(original, edited, start)
    chosen_name = st.selectbox("Saved scenario", list(saved["name"]))
    st.caption(saved.set_index("name").loc[chosen_name, "description"])
    return load_scenario(eng, chosen_name)


def _show(scenario: PriceListScenario | MigrationScenario) -> None:
    """Results, the forecast effect and (Members, Owners) the save form."""
    result = run_scenario(eng, who, scenario, start, end, book=book)
    m1, m2, m3 = st.columns(3)
    m1.metric("Baseline (list price)", money(result.baseline_usd))
    m2.metric("Under the scenario", money(result.scenario_usd))
    m3.metric("Difference", dollars(result.difference_usd, signed=True),
              delta=f"{result.difference_usd / result.baseline_usd:+.1%}"
              if result.baseline_usd else None, delta_color="inverse")
    st.caption("Both sides are list-price estimates from usage, so they compare like with "
               "like; billed cost is not changed.")
    if not result.unpriced.empty:
        st.warning("Some usage has no price and is left out of both sums:")
        st.dataframe(result.unpriced, hide_index=True, width="stretch")

    monthly = result.monthly.assign(month=result.monthly["month"].dt.strftime("%b %Y"))
    fig = px.bar(monthly, x="month", y="difference_usd", text="difference_usd",
                 title="Monthly difference, scenario − baseline (USD)",
                 labels={"difference_usd": "Difference (USD)", "month": "Month"})
    fig.update_traces(texttemplate="%{y:$,.0f}",
                      hovertemplate="%{x}: %{y:$,.2f}<extra></extra>")
    fig.update_yaxes(tickformat="$,.0f")
    fig.update_layout(**LAYOUT)
    st.plotly_chart(fig, width="stretch")

    st.subheader("By project and model")
    columns = {c: st.column_config.NumberColumn(label, format="dollar") for c, label in
                     (("baseline_usd", "Baseline"), ("scenario_usd", "Scenario"),
                      ("difference_usd", "Difference"))}
    columns |= {"project": "Project", "model": "Model", "unpriced_rows": "Unpriced rows"}
    st.dataframe(result.by_project_model.drop(columns="project_id"), hide_index=True,
                 width="stretch", column_config=columns)

    st.subheader("Effect on this period's forecast")
    as_of = min(last, datetime.now(UTC).date())
    try:
        effect = _effect(who.cache_key(), scenario_to_json(scenario), as_of, anchor_day(eng),
                         eng, who)
    except ForecastError as exc:
        st.info(str(exc))
    else:
        b = effect.baseline
        f1, f2 = st.columns(2)
        f1.metric(f"Forecast for {b.period_start:%d %b} – {b.period_end:%d %b %Y}",
                  money(b.forecast))
        f1.caption(f"80% range {money(b.low)} – {money(b.high)}")
        f2.metric("Under the scenario", money(effect.forecast),
                  delta=dollars(effect.difference_usd, signed=True), delta_color="inverse")
        f2.caption(f"80% range {money(effect.low)} – {money(effect.high)}")
        st.caption(f"Method: the spend still to come this period (forecast − "
                   f"{money(b.actual_to_date)} spent by {b.as_of:%d %b}) is scaled by "
                   f"{effect.ratio:.3f}, the scenario / baseline cost ratio of the last 28 days "
                   "of usage. Spend already made is not changed.")

    if who.can_import:
        with st.form("save_scenario"):
            c1, c2 = st.columns([3, 1])
            name = c1.text_input("Save as", value=scenario.name)
            replace = c2.checkbox("Replace a scenario of this name")
            if st.form_submit_button("Save scenario"):
                try:
                    save_scenario(eng, who, scenario, name, replace=replace)
                except (ScenarioError, AccessDenied) as exc:
                    st.error(str(exc))
                else:
                    st.success(f"Saved '{name.strip()}'.")


try:
    current = _choose_scenario()
    if current is not None:
        _show(current)
except (ScenarioError, PriceBookError, AccessDenied) as exc:
    st.info(str(exc))

st.subheader("Saved scenarios")
saved = list_scenarios(eng)
if not who.can_import:
    st.caption("Readers can try scenarios; a Member or Owner can save them.")
if saved.empty:
    st.caption("No saved scenarios yet.")
else:
    st.dataframe(saved, hide_index=True, width="stretch")
    if who.can_import:
        c1, c2 = st.columns([3, 1])
        doomed = c1.selectbox("Delete a saved scenario", list(saved["name"]), index=None)
        if c2.button("Delete", disabled=doomed is None) and doomed is not None:
            delete_scenario(eng, who, doomed)
            st.rerun()
