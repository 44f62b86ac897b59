"""The engine, the logged-in principal and cached frames, for the pages.

The engine is the only shared resource; every cached frame is keyed by the principal's
scope and the store's data version, so nothing user-specific leaks between sessions and an
import shows at once.
"""

from __future__ import annotations

import streamlit as st
from sqlalchemy import Engine

from analytics.access import Principal
from analytics.exports import dollars
from analytics.refresh import refresh
from analytics.store import database_url, get_engine


@st.cache_resource(show_spinner=False)
def _engine(url: str) -> Engine:
    return get_engine(url)


def engine() -> Engine:
    """The store's engine, one per URL for the server's life (it holds the pool)."""
    return _engine(database_url())


def principal() -> Principal:
    """The principal app.py put in the session after login.

    A page run without it (only possible if app.py failed before building the navigation)
    stops here rather than show anything.
    """
    who = st.session_state.get("principal")
    if who is None:
        st.warning("Please log in.")
        st.stop()
    return who


def data_changed() -> None:
    """Forget cached frames after an import or a settings change, and start recomputing in
    the background what users were looking at, so their next visit is quick (nothing to do
    when the data version did not change)."""
    st.cache_data.clear()
    refresh(engine())


def money(value: object) -> str:
    return dollars(value)
