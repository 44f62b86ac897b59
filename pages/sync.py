"""Sync: pull usage and cost from the providers' Admin APIs now (Owners only).

An admin key comes from the environment or Streamlit secrets; failing that, an Owner may enter
one here. An entered key lives only in this browser session: it is never written to the store,
never shown again, and the field is cleared once it is taken.
"""

from datetime import date

import streamlit as st

from analytics.sync import PROVIDERS, admin_key, sync_alerts, sync_provider, sync_status
from ui.session import data_changed, engine, principal

eng, who = engine(), principal()
who.require("sync provider data", owner_only=True)
st.title("Sync from provider APIs")
st.write("Fetches daily usage and billed cost from the OpenAI and Anthropic Admin APIs. Each "
         "run re-fetches the last few synced days (providers fill them in late); a sync and "
         "a downloaded export of the same days count once.")

session_keys: dict[str, str] = st.session_state.setdefault("sync_admin_keys", {})


def secrets() -> dict:
    try:
        return dict(st.secrets)
    except FileNotFoundError:  # no secrets.toml
        return {}


provider = st.selectbox("Provider", list(PROVIDERS), format_func=lambda p: PROVIDERS[p].label)
api = PROVIDERS[provider]
configured = admin_key(provider, secrets())
key = configured or session_keys.get(provider)
if configured:
    st.caption(f"Using the admin key from {api.key_env} (environment or secrets).")
elif key:
    st.caption("Using the admin key entered in this session.")
    if st.button("Forget the entered key"):
        session_keys.pop(provider, None)
        st.rerun()
else:
    with st.form(f"key_{provider}", clear_on_submit=True):
        entered = st.text_input(f"{api.label} admin key", type="password",
                                help="Kept in this browser session only; never stored.")
        if st.form_submit_button("Use this key") and entered.strip():
            session_keys[provider] = entered.strip()
            st.rerun()

since = st.date_input("Fetch from (leave empty to continue from the last sync)", value=None,
                      max_value=date.today())
if st.button("Sync now", type="primary", disabled=not key):
    bar = st.progress(0.0, text="Starting…")
    result = sync_provider(eng, who, provider, key, since=since,
                           progress=lambda fraction, text: bar.progress(fraction, text=text))
    data_changed()
    if result.ok:
        bar.progress(1.0, text="Done")
        st.success(result.summary())
    else:
        st.error(result.summary())

st.subheader("Last sync per endpoint")
status = sync_status(eng)
if status.empty:
    st.info("Nothing synced yet.")
else:
    st.dataframe(status, hide_index=True, width="stretch", column_config={
        "provider": "Provider", "endpoint": "Endpoint", "last_day": "Last day held",
        "last_run_at": st.column_config.DatetimeColumn("Last run (UTC)"),
        "status": "Result", "message": "Details"})
alerts = sync_alerts(eng)
if not alerts.empty:
    st.subheader("Sync failures")
    st.dataframe(alerts, hide_index=True, width="stretch", column_config={
        "at": st.column_config.DatetimeColumn("When (UTC)"), "level": "Level",
        "message": "What failed"})
st.caption("Schedule it with cron or a systemd timer: `python -m analytics sync` (see the "
           "README).")
