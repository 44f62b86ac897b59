"""Overview: this billing period's spend against the last, who and what spent it."""

from datetime import UTC, datetime

import streamlit as st

from analytics.org import anchor_day, get_setting
from analytics.overview import overview
from ui.charts import ranked_bar, spend_over_time
from ui.session import engine, money, principal

eng, who = engine(), principal()
st.title(f"{get_setting(eng, 'org_name')}: AI spend")
view = overview(eng, who, datetime.now(UTC).date(), anchor_day(eng))
if view is None:
    st.info("No data yet. " + ("Import your provider exports on the **Import** page, or load "
                               "the demo organisation there." if who.can_import else
                               "Ask an Owner or Member to import the provider exports."))
    st.stop()

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
