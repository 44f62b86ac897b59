"""Overview: this billing period's spend against the last, who and what spent it."""

from datetime import UTC, datetime

import streamlit as st

from analytics.org import anchor_day, get_setting
from analytics.overview import overview
from analytics.sync import PROVIDERS, latest_by_provider
from ui.charts import ranked_bar, spend_over_time
from ui.session import engine, money, principal

eng, who = engine(), principal()
st.title(f"{get_setting(eng, 'org_name')}: AI spend")
provider = st.columns([1, 3])[0].selectbox("Provider", ["", *PROVIDERS],
                                           format_func=lambda p: PROVIDERS[p].label
                                           if p else "All providers")
view = overview(eng, who, datetime.now(UTC).date(), anchor_day(eng), provider=provider or None)
if view is None:
    st.info("No data yet. " + ("Import your provider exports on the **Import** page, or load "
                               "the demo organisation there." if who.can_import else
                               "Ask an Owner or Member to import the provider exports."))
    st.stop()

for run in latest_by_provider(eng).itertuples():
    label = PROVIDERS[run.provider].label if run.provider in PROVIDERS else run.provider
    when = f"{run.last_run_at:%d %b %Y %H:%M} UTC"
    if run.status == "failed":
        st.warning(f"{label} sync failed at {when}: {run.message}")
    else:
        st.caption(f"{label} last synced {when}: ok")

p = view.period
st.caption(f"Billing period {p.start:%d %b %Y} – {p.end:%d %b %Y} · data up to "
           f"{view.as_of:%d %b %Y}")
c1, c2, c3 = st.columns(3)
change = view.change_pct
c1.metric("This period so far", money(view.spend),
          delta=f"{change:+.1f}% vs same point last period" if change is not None else None,
          delta_color="inverse")
c2.metric("Last period (full)", money(view.previous_spend))
c3.metric("Last period to the same day", money(view.previous_same_point))

daily = view.daily_by_project.rename(columns={"project_name": "Project"})
daily = daily[daily["cost_usd"].notna()]
if not daily.empty:
    st.plotly_chart(spend_over_time(daily, "day", "Project", "cost_usd",
                                    "Daily spend by project (USD)"), width="stretch")
left, right = st.columns(2)
if not view.top_projects.empty:
    left.plotly_chart(ranked_bar(view.top_projects, "name", "cost_usd",
                                 "Top projects this period"), width="stretch")
if not view.top_models.empty:
    right.plotly_chart(ranked_bar(view.top_models, "model", "cost_usd",
                                  "Top models this period"), width="stretch")
if not view.by_provider.empty:
    shares = view.by_provider.assign(label=view.by_provider["provider"].map(
        lambda p: PROVIDERS[p].label if p in PROVIDERS else p))
    st.plotly_chart(ranked_bar(shares, "label", "cost_usd", "Spend by provider this period"),
                    width="stretch")
