"""Insights: money to save and problems to fix, ranked by dollars per month, each with the
chart and the rows behind it.

A large store can have dozens of findings (thousands of spikes in minute exports), and drawing
each one's chart and evidence table took seconds; so findings are listed a page at a time, a
finding's chart and rows are drawn only while its expander is open, and the report is kept
per store data version (``analytics.insights.insights_report``)."""

import streamlit as st

from analytics.exports import to_csv
from analytics.insights import Finding, analysis_window, insights_report
from analytics.queries import data_range
from ui.charts import spend_over_time
from ui.session import engine, principal

PAGE_SIZE = 25  # findings drawn per page: each is a few elements, and the page must stay quick
eng, who = engine(), principal()


def _plain(text: str) -> str:
    """Dollar signs as text: Streamlit's markdown reads $...$ as maths."""
    return text.replace("$", "\\$")


def _details(finding: Finding, i: int) -> None:
    """The finding's chart, its evidence rows and their download."""
    if not finding.chart.empty:
        intraday = finding.kind in ("rate_limit",) or "UTC" in finding.window
        axis = "time" if intraday else "day"
        value = "spend" if finding.chart_money else "requests"
        chart = finding.chart.rename(columns={"x": axis, "y": value})
        figure = spend_over_time(chart, axis, "series", value, finding.chart_title,
                                 stacked=not finding.chart_money, money=finding.chart_money)
        if finding.chart_money:  # savings are often a few dollars a day: show the cents
            figure.update_yaxes(tickformat=",.2f")
        st.plotly_chart(figure, width="stretch", key=f"chart_{i}")
    money_columns = [c for c in finding.evidence.columns if str(c).endswith("usd")]
    formats = {c: st.column_config.NumberColumn(c, format="dollar") for c in money_columns}
    if "share" in finding.evidence:
        formats["share"] = st.column_config.NumberColumn("share", format="percent")
    st.dataframe(finding.evidence, hide_index=True, width="stretch", column_config=formats)
    st.download_button("Download evidence (CSV)", to_csv(finding.evidence),
                       file_name=f"burnrate_{finding.kind}_{i + 1}.csv", mime="text/csv",
                       key=f"evidence_{i}")


st.title("Insights")
st.caption("Where money can be saved and what to fix, ranked by dollars per month at list "
           "price. Savings that touch the same usage are alternatives, not a sum.")
first, last = data_range(eng, who)
default = analysis_window(eng, who)
if first is None or last is None or default is None:
    st.info("No data yet.")
    st.stop()
span = st.date_input("Days analysed", value=default, min_value=first, max_value=last)
if not isinstance(span, tuple) or len(span) != 2:
    st.info("Pick the last day of the range.")
    st.stop()
with st.spinner("Looking for savings…"):
    # The default window is asked for as the default: it moves with the data, so the report
    # refreshed in the background after an import is the one this page opens with.
    analysis = insights_report(eng, who, *(() if span == default else span))
if analysis is None:
    st.info("No data yet.")
    st.stop()

report, table = analysis
c1, c2, c3 = st.columns(3)
c1.metric("Findings", len(table))
c2.metric("Largest saving", f"${table['monthly_usd'].max() if len(table) else 0:,.0f}/month")
c3.metric("Days analysed", report.days)
for note in report.notes:
    st.caption(_plain(note))
if table.empty:
    st.success("Nothing to fix in this window: no wasteful models, missed discounts, spikes "
               "or stale keys.")
    st.stop()

categories = sorted(table["category"].unique())
shown = st.multiselect("Show", categories, default=categories)
st.download_button("Download findings (CSV)", lambda: to_csv(table),
                   file_name=f"burnrate_insights_{report.start}_{report.end}.csv",
                   mime="text/csv")
listed = [(i, f) for i, f in enumerate(report.findings) if f.category in shown]
pages = -(-len(listed) // PAGE_SIZE)
page = 1
if pages > 1:  # thousands of spikes are possible: draw one page of findings at a time
    page = int(st.number_input(f"Page (of {pages}, {PAGE_SIZE} findings each, largest first)",
                               min_value=1, max_value=pages, value=1, step=1,
                               key=f"page_{report.start}_{report.end}_{len(listed)}"))
for i, finding in listed[(page - 1) * PAGE_SIZE:page * PAGE_SIZE]:
    worth = f"${finding.monthly_usd:,.0f}/month" if finding.monthly_usd else "no direct cost"
    box = st.expander(_plain(f"**{worth}** · {finding.category} · {finding.title}"),
                      key=f"finding_{report.start}_{report.end}_{i}", on_change="rerun")
    with box:
        st.markdown(_plain(f"**What to do:** {finding.action}"))
        where = [("Project", finding.project), ("Key", finding.api_key),
                 ("Model", finding.model), ("Window", finding.window)]
        st.caption(_plain(" · ".join(f"{k}: {v}" for k, v in where if v)))
        if finding.caveat:
            st.caption(_plain(finding.caveat))
        if box.open:  # the chart and rows only when someone looks
            _details(finding, i)
