"""Burnrate's Streamlit entry: page config, first-run setup, login, then the pages the
user's role may open (a page not listed in the navigation cannot be reached at all)."""

from __future__ import annotations

import streamlit as st
import streamlit_authenticator as stauth

from analytics import auth
from ui.nav import pages_for
from ui.session import engine

st.set_page_config(page_title="Burnrate", page_icon=":material/local_fire_department:",
                   layout="wide")


@st.cache_resource(show_spinner=False)
def _setup_token() -> str | None:
    """Issued once per server process while no user exists, and printed to its console."""
    token = auth.issue_setup_token(engine())
    if token:
        print(f"\n  Burnrate first-run setup token: {token}\n"
              "  Open the app in a browser and paste it to create the first Owner.\n", flush=True)
    return token


def first_run() -> None:
    st.title("Welcome to Burnrate")
    st.write("No one has an account yet. Create the first **Owner** with the setup token "
             "printed in the console where the app was started.")
    with st.form("first_owner"):
        token = st.text_input("Setup token", type="password")
        username = st.text_input("Username")
        name = st.text_input("Full name")
        email = st.text_input("Email")
        password = st.text_input("Password (at least 8 characters)", type="password")
        again = st.text_input("Password again", type="password")
        if st.form_submit_button("Create Owner", type="primary"):
            if password != again:
                st.error("The two passwords differ.")
            else:
                try:
                    auth.create_first_owner(engine(), token, username, name, email, password)
                except auth.UserError as exc:
                    st.error(str(exc))
                else:
                    _setup_token.clear()
                    st.success("Owner created. Log in below.")
                    st.rerun()


def authenticator() -> stauth.Authenticate:
    """One Authenticate per session, over the users in the store (hashes only)."""
    if "authenticator" not in st.session_state:
        st.session_state["authenticator"] = stauth.Authenticate(
            auth.credentials(engine()), "burnrate_auth", auth.cookie_key(),
            cookie_expiry_days=7, auto_hash=False, login_sleep_time=0)
    return st.session_state["authenticator"]


def login(authenticate: stauth.Authenticate) -> None:
    """Burnrate's own form, so that failures are counted in the store (5 lock a username)."""
    st.title("Burnrate")
    st.caption("What your AI API usage costs, where the period will land, and what would "
               "change it.")
    with st.form("login"):
        username = st.text_input("Username")
        password = st.text_input("Password", type="password")
        if st.form_submit_button("Log in", type="primary"):
            result = auth.authenticate(engine(), username, password)
            if result.ok and result.user:
                st.session_state.update(authentication_status=True, username=result.user.username,
                                        name=result.user.name, logout=False)
                authenticate.cookie_controller.set_cookie()
                st.rerun()
            else:
                st.error(result.message)


def main() -> None:
    if auth.count_users(engine()) == 0:
        _setup_token()
        first_run()
        return
    authenticate = authenticator()
    try:
        authenticate.login(location="unrendered")
    except Exception:  # a cookie for a removed user, a forged or garbage cookie: log out
        st.session_state["authentication_status"] = None
    user = auth.get_user(engine(), st.session_state.get("username") or "")
    if not st.session_state.get("authentication_status") or user is None:
        login(authenticate)
        return
    st.session_state["principal"] = user.principal()
    with st.sidebar:
        st.write(f"**{user.name}** · {user.role.capitalize()}")
        if user.projects is not None:
            st.caption(f"Limited to {len(user.projects)} project(s)")
        authenticate.logout("Log out", location="sidebar")
    st.navigation(pages_for(user.role)).run()


main()
