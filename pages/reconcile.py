"""Reconcile: billed cost against usage x the price book, differences and their likely reason."""

import streamlit as st

from analytics.exports import to_csv
from analytics.queries import data_range, projects
from analytics.reconcile import reconcile
from analytics.reconcile_rows import DEFAULT_DAYS, recent_range
from ui.charts import spend_over_time
from ui.session import engine, money, principal

eng, who = engine(), principal()
st.title("Reconcile billed and estimated cost")
st.caption("Billed cost (cost exports) against usage x list prices, by day, project and model "
           "family. Where they agree, cost by key, user and what-if figures can be trusted.")
first, last = data_range(eng, who)
if last is None:
    st.info("No data yet.")
    st.stop()

visible = projects(eng, who)
names = dict(zip(visible["project_id"], visible["name"].fillna(visible["project_id"]),
                 strict=True))
c1, c2, c3 = st.columns([2, 2, 1])
default = recent_range(eng, who)
span = c1.date_input("Date range", value=default, min_value=first, max_value=last)
chosen = c2.selectbox("Project", ["(all)", *names], format_func=lambda p: names.get(p, p))
threshold = c3.number_input("Flag above (%)", min_value=0.0, max_value=100.0, value=1.0,
                            step=0.5)
if not isinstance(span, tuple) or len(span) != 2:
    st.info("Pick the last day of the range.")
    st.stop()

# The default range is asked for as "the last days of data": it moves with the data, so the
# rows refreshed in the background after an import are the ones this page opens with.
dates = {"last_days": DEFAULT_DAYS} if span == default else {"start": span[0], "end": span[1]}
result = reconcile(eng, who, project=None if chosen == "(all)" else chosen,
                   threshold_pct=threshold, **dates)
rows = result.rows
billed, estimated = rows["billed_usd"].sum(), rows["estimated_usd"].sum()
m1, m2, m3, m4 = st.columns(4)
m1.metric("Billed", money(billed))
m2.metric("Estimated from usage", money(estimated))
m3.metric("Difference (billed − estimated)", money(billed - estimated))
m4.metric(f"Rows differing by more than {threshold:g}%", f"{int(rows['flagged'].sum())}")

daily = (rows.groupby("day", as_index=False)[["billed_usd", "estimated_usd"]].sum()
         .melt(id_vars="day", var_name="series", value_name="usd"))
daily["series"] = daily["series"].map({"billed_usd": "Billed", "estimated_usd": "Estimated"})
st.plotly_chart(spend_over_time(daily, "day", "series", "usd",
                                "Billed vs estimated cost per day (USD)", stacked=False),
                width="stretch")

MONEY = {c: st.column_config.NumberColumn(label, format="dollar") for c, label in
         (("billed_usd", "Billed"), ("estimated_usd", "Estimated"),
          ("difference_usd", "Difference"))}
MONEY |= {"difference_pct": st.column_config.NumberColumn("Difference %", format="%.2f%%"),
          "day": "Day", "project": "Project", "model": "Model family", "reason": "Likely reason",
          "flagged": "Flagged", "flagged_rows": "Flagged rows", "reasons": "Reasons",
          "project_id": None}
flagged = result.flagged
st.subheader("Differences to look at")
if flagged.empty:
    st.success(f"No day, project and model differs by more than {threshold:g}%.")
else:
    biggest_first = flagged.sort_values("difference_usd", key=abs, ascending=False)
    st.dataframe(biggest_first[["day", "project", "model", "billed_usd", "estimated_usd",
                                "difference_usd", "difference_pct", "reason"]],
                 hide_index=True, width="stretch", column_config=MONEY)

by_project, by_model = st.tabs(["By project", "By model"])
for tab, key in ((by_project, "project"), (by_model, "model")):
    tab.dataframe(result.summary([key]), hide_index=True, width="stretch",
                  column_config=MONEY)
st.download_button("Download all rows (CSV)", to_csv(rows),
                   file_name=f"burnrate_reconcile_{span[0]}_{span[1]}.csv", mime="text/csv")
