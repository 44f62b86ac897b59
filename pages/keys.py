"""API keys: every key seen, its recent spend, who owns it, and a checklist to rotate it."""

import streamlit as st

from analytics.exports import to_csv
from analytics.keys import (
    STALE_AFTER_DAYS,
    KeyNoteError,
    add_note,
    key_inventory,
    note_history,
    rotation_checklist,
)
from ui.session import data_changed, engine, money, principal

eng, who = engine(), principal()
st.title("API keys")
inventory = key_inventory(eng, who)
if inventory.empty:
    st.info("No API keys yet: they appear once a usage export grouped by key is imported.")
    st.stop()

stale = inventory[inventory["stale"]]
c1, c2, c3 = st.columns(3)
c1.metric("Keys seen", len(inventory))
c2.metric(f"Unused for {STALE_AFTER_DAYS}+ days", len(stale))
c3.metric("Spend, last 30 days (estimated)", money(inventory["spend_30d_usd"].sum()))
if not stale.empty:
    st.warning(f"{len(stale)} key(s) had no request for {STALE_AFTER_DAYS} days or more: "
               "delete them once their rotation checklist is done.")

only_stale = st.toggle(f"Only keys unused for {STALE_AFTER_DAYS}+ days", value=False)
shown = stale if only_stale else inventory
named = ["name"] if inventory["name"].astype(bool).any() else []
st.dataframe(
    shown[["api_key_id", *named, "project", "first_seen", "last_seen", "days_idle",
           "requests_30d", "spend_30d_usd", "owner", "service", "note", "stale"]],
    hide_index=True, width="stretch",
    column_config={
        "api_key_id": "Key", "name": "Name", "project": "Project",
        "first_seen": "First seen", "last_seen": "Last seen", "days_idle": "Days idle",
        "requests_30d": st.column_config.NumberColumn("Requests, 30 days", format="localized"),
        "spend_30d_usd": st.column_config.NumberColumn("Spend, 30 days (est.)",
                                                       format="dollar"),
        "owner": "Owner", "service": "Service", "note": "Note",
        "stale": st.column_config.CheckboxColumn("Unused 30+ days")})
st.download_button("Download key inventory (CSV)", to_csv(shown),
                   file_name="burnrate_api_keys.csv", mime="text/csv")

st.subheader("A key")
labels = {f"{r.api_key_id} ({r.project})": (r.provider, r.api_key_id)
          for r in inventory.itertuples()}
provider, key = labels[st.selectbox("Key", list(labels))]
left, right = st.columns(2)
with left:
    st.markdown("**Rotation checklist**")
    st.caption("Update every service below to the new key before the old one is deleted.")
    steps = rotation_checklist(eng, who, key, provider)
    st.markdown("\n".join(f"{s.step}. **{s.action}** — {s.detail}".replace("$", "\\$")
                          for s in steps.itertuples()))
with right:
    st.markdown("**Notes**")
    history = note_history(eng, who, key, provider)
    if history.empty:
        st.caption("No note yet.")
    else:
        st.dataframe(history, hide_index=True, width="stretch")
    if who.can_import:
        latest = history.iloc[0] if not history.empty else None
        with st.form("key_note", clear_on_submit=False):
            owner = st.text_input("Owner", value=latest["owner"] if latest is not None else "")
            service = st.text_input("Service using the key",
                                    value=latest["service"] if latest is not None else "")
            text = st.text_area("Note")
            if st.form_submit_button("Save note"):
                try:
                    add_note(eng, who, key, owner, service, text, provider)
                except KeyNoteError as exc:
                    st.error(str(exc))
                else:
                    data_changed()
                    st.rerun()
    else:
        st.caption("Readers see notes; Members and Owners write them.")
