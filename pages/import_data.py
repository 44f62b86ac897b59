"""Import: drop provider exports, preview what was recognised, then commit them."""

import pandas as pd
import streamlit as st

from analytics.demo import load_demo
from analytics.ingest import import_sources
from analytics.preview import preview_sources
from analytics.queries import data_range, import_history
from ui.session import data_changed, engine, principal

eng, who = engine(), principal()
who.require("import data")
st.title("Import exports")
st.write("Drop the usage and cost exports you downloaded from OpenAI (CSV) or the Admin API "
         "pages (JSON). Overlapping downloads are fine: every day is counted once.")

uploads = st.file_uploader("Export files", type=["csv", "json"], accept_multiple_files=True)
if uploads:
    sources = [(u.name, u.getvalue()) for u in uploads]
    previews = preview_sources(sources)
    st.subheader("What was recognised")
    st.dataframe(pd.DataFrame([{
        "File": p.file, "Format": p.format, "Days": f"{p.first_day} to {p.last_day}"
        if p.first_day else "", "Rows": p.rows,
        "Dollars": f"${p.total_usd:,.2f}" if p.total_usd is not None else "",
        "Problem": p.error or ""} for p in previews]), hide_index=True, width="stretch")
    good = [s for s, p in zip(sources, previews, strict=True) if p.ok]
    if good and st.button(f"Import {len(good)} file(s)", type="primary"):
        bar = st.progress(0.0, text="Importing…")
        results = []
        for i, source in enumerate(good, start=1):
            results.extend(import_sources(eng, [source], user=who.username))
            bar.progress(i / len(good), text=f"Imported {i} of {len(good)}")
        data_changed()
        for r in results:
            if r.ok:
                st.success(f"{r.file}: {r.new:,} new rows, {r.replaced:,} replaced "
                           f"({r.first_day} to {r.last_day}).")
            else:
                st.error(r.error)

if data_range(eng, who)[1] is None:
    st.divider()
    st.write("No data yet? Load a simulated organisation to see every page working.")
    if st.button("Load the demo organisation"):
        with st.spinner("Simulating a year of usage and importing it…"):
            results = load_demo(eng)
        data_changed()
        st.success(f"Demo loaded: {sum(r.rows for r in results):,} rows from "
                   f"{len(results)} exports.")

st.subheader("Import history")
history = import_history(eng)
if history.empty:
    st.caption("Nothing imported yet.")
else:
    st.dataframe(history[["imported_at", "imported_by", "file_name", "format", "rows_read",
                          "rows_new", "rows_replaced", "first_day", "last_day"]],
                 hide_index=True, width="stretch")
