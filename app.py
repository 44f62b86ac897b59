"""Burnrate's Streamlit entry: page config, first-run setup, login, then the pages the
user's role may open (a page not listed in the navigation cannot be reached at all)."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial

import streamlit as st
import streamlit_authenticator as stauth

from analytics import auth
from analytics.refresh import watch
from analytics.store import StoreError
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
            auth.credentials(engine()), auth.COOKIE_NAME, auth.cookie_key(),
            cookie_expiry_days=auth.COOKIE_DAYS, auto_hash=False, login_sleep_time=0)
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
            result = auth.authenticate(engine(), username, password, client())
            if result.ok and result.user:
                st.session_state.update(authentication_status=True, username=result.user.username,
                                        name=result.user.name, logout=False)
                authenticate.cookie_controller.set_cookie()
                st.rerun()
            else:
                st.error(result.message)


def client() -> str:
    """Where this browser connects from, for per-client login throttling (see
    ``auth.client_of``; set BURNRATE_BEHIND_PROXY=1 behind a reverse proxy)."""
    return auth.client_of(st.context.ip_address, st.context.headers.get("X-Forwarded-For"),
                          os.environ.get("BURNRATE_BEHIND_PROXY") == "1")


def from_cookie() -> None:
    """Log in from the login cookie, checked by ``auth.cookie_user`` (only our key's
    signature, not expired, the user still exists); any other cookie is ignored, so the
    login form shows. After "Log out" the browser's old cookie is not trusted again."""
    if st.session_state.get("authentication_status") or st.session_state.get("logout"):
        return
    user = auth.cookie_user(engine(), st.context.cookies.get(auth.COOKIE_NAME),
                            auth.cookie_key())
    if user is not None:
        st.session_state.update(authentication_status=True, username=user.username,
                                name=user.name, logout=False)


def user_count() -> int | str:
    """How many users the store has, or the plain-words reason (no credentials) why the
    store cannot be reached."""
    try:
        return auth.count_users(engine())
    except StoreError as exc:
        return str(exc)


def gate(render: Callable[[], None], url_path: str, title: str) -> None:
    """Show one screen as the whole navigation: before login nothing else is reachable, and
    Streamlit never falls back to listing the files in pages/."""
    st.navigation([st.Page(render, title=title, url_path=url_path, default=True)],
                  position="hidden").run()


def store_down(reason: str) -> None:
    st.title("Burnrate")
    st.error(reason)


def main() -> None:
    users = user_count()
    if isinstance(users, str):
        gate(partial(store_down, users), "unavailable", "Store unavailable")
        return
    watch(engine())  # once per store: imports by the CLI or cron are refreshed for, too
    if users == 0:
        _setup_token()
        gate(first_run, "welcome", "Welcome")
        return
    authenticate = authenticator()
    from_cookie()
    user = auth.get_user(engine(), st.session_state.get("username") or "")
    if not st.session_state.get("authentication_status") or user is None:
        gate(partial(login, authenticate), "login", "Log in")
        return
    st.session_state["principal"] = user.principal()
    with st.sidebar:
        st.write(f"**{user.name}** · {user.role.capitalize()}")
        if user.projects is not None:
            st.caption(f"Limited to {len(user.projects)} project(s)")
        authenticate.logout("Log out", location="sidebar")
    st.navigation(pages_for(user.role), expanded=True).run()


main()
