"""Explore: spend and tokens by any dimension, grain and date range, with a CSV download."""

from datetime import timedelta

import streamlit as st

from analytics.explore import GRAINS, GROUPS, explore
from analytics.exports import to_csv
from analytics.focus import focus_csv, focus_frame
from analytics.queries import data_range
from analytics.sync import PROVIDERS
from ui.charts import spend_over_time
from ui.session import engine, principal

eng, who = engine(), principal()
st.title("Explore spend")
first, last = data_range(eng, who)
if last is None:
    st.info("No data yet.")
    st.stop()

c1, c2, c3, c4, c5 = st.columns([2, 1, 1, 1, 1])
span = c1.date_input("Date range", value=(max(first, last - timedelta(days=89)), last),
                     min_value=first, max_value=last)
provider = c2.selectbox("Provider", ["", *PROVIDERS],
                        format_func=lambda p: PROVIDERS[p].label if p else "All providers")
group = c3.selectbox("Group by", list(GROUPS), format_func=lambda g: GROUPS[g])
grain = c4.selectbox("Grain", GRAINS, index=0)
measure = c5.selectbox("Measure", ["Spend (USD)", "Tokens", "Requests"])
stacked = st.toggle("Stacked", value=True)
if not isinstance(span, tuple) or len(span) != 2:
    st.info("Pick the last day of the range.")
    st.stop()

result = explore(eng, who, group, grain, span[0], span[1], provider or None)
value = {"Spend (USD)": "cost_usd", "Tokens": "total_tokens", "Requests": "requests"}[measure]
title = f"{measure} by {GROUPS[group].lower()}, {grain}"
if result.series.empty:
    st.info("Nothing in this range.")
    st.stop()
st.plotly_chart(spend_over_time(result.series, "period", "label", value, title,
                                stacked=stacked, money=value == "cost_usd"), width="stretch")
if result.note:
    st.caption(result.note)
count = st.column_config.NumberColumn
st.dataframe(result.table, hide_index=True, width="stretch", column_config={
    "key": st.column_config.TextColumn("ID"), "label": st.column_config.TextColumn("Name"),
    "cost_usd": count("Spend (USD)", format="dollar"),
    "input_tokens": count("Input tokens", format="localized"),
    "cached_input_tokens": count("Cached input tokens", format="localized"),
    "output_tokens": count("Output tokens", format="localized"),
    "requests": count("Requests", format="localized"),
    "basis": st.column_config.TextColumn("Basis", help="billed, or estimated from usage")})
d1, d2 = st.columns(2)
d1.download_button("Download CSV", to_csv(result.table),
                   file_name=f"burnrate_{group}_{grain}_{span[0]}_{span[1]}.csv",
                   mime="text/csv")
d2.download_button("Download FOCUS 1.2 (billed spend, all providers)",
                   lambda: focus_csv(focus_frame(eng, who, span[0], span[1])),
                   file_name=f"burnrate_focus_{span[0]}_{span[1]}.csv", mime="text/csv",
                   help="FinOps FOCUS 1.2 rows for FinOps tools, one per billed cost line")
