"""Settings (Owner): organisation, billing anchor day, users and roles, project labels."""

import pandas as pd
import streamlit as st

from analytics import auth
from analytics.org import (
    ENVIRONMENTS,
    anchor_day,
    get_setting,
    label_project,
    set_anchor_day,
    set_setting,
)
from analytics.planning import suggest_environments
from analytics.queries import projects
from ui.session import data_changed, engine, principal

eng, who = engine(), principal()
who.require("change settings", owner_only=True)
st.title("Settings")

st.subheader("Organisation")
with st.form("org"):
    name = st.text_input("Organisation name", value=get_setting(eng, "org_name"))
    anchor = st.number_input("Billing period starts on day", 1, 31, value=anchor_day(eng),
                             help="1 = calendar months; e.g. 15 = periods run 15th to 14th.")
    if st.form_submit_button("Save"):
        set_setting(eng, who, "org_name", name.strip() or "My organisation")
        set_anchor_day(eng, who, int(anchor))
        data_changed()
        st.success("Saved.")

st.subheader("Projects")
proj = projects(eng, who)
if proj.empty:
    st.caption("Projects appear here after the first import.")
else:
    if st.button("Suggest environments", help="Fill empty environments with a guess from "
                 "the project name (dev, stg, prod, etl...); review them, then save."):
        guessed = int((suggest_environments(proj)["environment"].fillna("")
                       != proj["environment"].fillna("")).sum())
        st.session_state["projects_suggest"] = True
        st.session_state["projects_rev"] = st.session_state.get("projects_rev", 0) + 1
        st.info(f"Suggested {guessed} environment{'s' if guessed != 1 else ''} from project "
                "names; names that say nothing clear are left empty. Review, then save.")
    shown = suggest_environments(proj) if st.session_state.get("projects_suggest") else proj
    edited = st.data_editor(
        shown[["provider", "project_id", "name", "environment"]], hide_index=True,
        disabled=["provider", "project_id"], width="stretch",
        key=f"projects_editor_{st.session_state.get('projects_rev', 0)}",
        column_config={"environment": st.column_config.SelectboxColumn(
            "Environment", options=list(ENVIRONMENTS))})
    if st.button("Save project labels"):
        for row in edited.itertuples():
            label_project(eng, who, row.provider, row.project_id, row.name, row.environment)
        st.session_state.pop("projects_suggest", None)
        data_changed()
        st.success("Project labels saved.")

st.subheader("Users")
users = auth.list_users(eng)
st.dataframe(pd.DataFrame([{
    "Username": u.username, "Name": u.name, "Email": u.email, "Role": u.role,
    "Projects": "all" if u.projects is None else ", ".join(u.projects)} for u in users]),
    hide_index=True, width="stretch")
all_projects = list(proj["project_id"]) if not proj.empty else []
with st.form("add_user", clear_on_submit=True):
    st.write("Add a user")
    c1, c2, c3 = st.columns(3)
    username = c1.text_input("Username")
    full_name = c2.text_input("Name")
    email = c3.text_input("Email")
    password = c1.text_input("Initial password", type="password")
    role = c2.selectbox("Role", ["reader", "member", "owner"])
    scope = c3.multiselect("Limit to projects (empty: all)", all_projects)
    if st.form_submit_button("Add user"):
        try:
            auth.add_user(eng, username, full_name, email, password, role, scope or None,
                          actor=who.username)
            st.success(f"Added {username}.")
        except auth.UserError as exc:
            st.error(str(exc))
with st.form("change_user"):
    st.write("Change a user")
    c1, c2, c3 = st.columns(3)
    target = c1.selectbox("User", [u.username for u in users])
    new_role = c2.selectbox("New role", ["(keep)", "reader", "member", "owner"])
    new_scope = c3.multiselect("Projects (empty: all)", all_projects)
    remove = st.checkbox("Remove this user")
    if st.form_submit_button("Apply"):
        try:
            if remove:
                auth.remove_user(eng, target, actor=who.username)
            else:
                if new_role != "(keep)":
                    auth.set_role(eng, target, new_role, actor=who.username)
                auth.set_projects(eng, target, new_scope or None, actor=who.username)
            st.success("Done.")
        except auth.UserError as exc:
            st.error(str(exc))
