"""Audit log (Owner): who changed what and when, as a table and a CSV; and retention —
purge old data or delete one import — each behind a confirmation."""

import streamlit as st

from analytics import audit, retention
from analytics.exports import to_csv
from analytics.queries import import_history
from ui.session import data_changed, engine, principal

ALL = "(every action)"


def done(message: str, confirmation: str) -> None:
    """Say what was deleted after the rerun that shows the store without it, unticked."""
    data_changed()
    st.session_state["retention_done"] = message
    st.session_state.pop(confirmation, None)
    st.rerun()


eng, who = engine(), principal()
who.require("read the audit log", owner_only=True)
st.title("Audit log")
st.caption("Imports, deletions, user and role changes, budgets, prices, plans, logins and "
           "failed logins. Nothing in the app can change or remove these rows.")

recent = audit.entries(eng, limit=5000)
action = st.selectbox("Action", [ALL, *sorted(recent["action"].unique())])
log = recent if action == ALL else audit.entries(eng, limit=5000, action=action)
text = st.column_config.TextColumn
st.dataframe(log, hide_index=True, width="stretch", column_config={
    "id": st.column_config.NumberColumn("#"), "at": st.column_config.DatetimeColumn("When (UTC)"),
    "username": text("Who"), "action": text("Action"), "target": text("What"),
    "before": text("Before"), "after": text("After")})
st.download_button("Download audit log (CSV)", to_csv(log), file_name="burnrate_audit_log.csv",
                   mime="text/csv")

st.header("Retention")
if "retention_done" in st.session_state:
    st.success(st.session_state.pop("retention_done"))
st.write("Deleting cannot be undone here; the audit log records who did it and what went.")
left, right = st.columns(2)
with left, st.container(border=True):
    st.subheader("Purge old data")
    months = int(st.number_input("Keep the last (months)", 1, retention.MAX_MONTHS, 24))
    preview = retention.purge_preview(eng, who, months)
    st.write(f"Deletes **{preview.usage_rows:,}** usage rows and **{preview.cost_rows:,}** "
             f"cost rows dated before {preview.before}.")
    sure = st.checkbox("Yes, delete them", key="confirm_purge")
    if st.button("Purge", disabled=not sure or preview.rows == 0, type="primary"):
        removed = retention.purge_older_than(eng, who, months)
        done(f"Deleted {removed.rows:,} rows dated before {removed.before}.", "confirm_purge")

with right, st.container(border=True):
    st.subheader("Delete an import")
    history = import_history(eng)
    if history.empty:
        st.caption("Nothing imported yet.")
    else:
        labels = {int(r.id): f"#{r.id} · {r.file_name} · {str(r.imported_at)[:16]} · "
                  f"{r.imported_by}" for r in history.itertuples()}
        chosen = st.selectbox("Import", list(labels), format_func=labels.__getitem__)
        gone = retention.import_preview(eng, who, chosen)
        st.write(f"Deletes **{gone.usage_rows:,}** usage rows and **{gone.cost_rows:,}** cost "
                 "rows that still carry this import. Rows it replaced are not restored: "
                 "import those files again if you want them back.")
        sure = st.checkbox("Yes, delete this import", key="confirm_delete_import")
        if st.button("Delete import", disabled=not sure, type="primary"):
            removed = retention.delete_import(eng, who, chosen)
            done(f"Deleted import #{chosen} and its {removed.rows:,} rows.",
                 "confirm_delete_import")
