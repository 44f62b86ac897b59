"""Small helpers the tests share: a snapshot of the whole store, and export writers."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, func, select
from streamlit.testing.v1 import AppTest

from analytics.store import Cost, ImportRecord, Project, Usage


def store_snapshot(engine: Engine) -> dict[str, object]:
    """Row counts and sums of every fact table: equal snapshots mean an unchanged store."""
    with engine.connect() as conn:
        return {
            "usage": conn.execute(select(func.count(), func.sum(Usage.input_tokens))).one(),
            "cost": conn.execute(select(func.count(), func.sum(Cost.amount))).one(),
            "imports": conn.execute(select(func.count()).select_from(ImportRecord)).scalar(),
            "projects": conn.execute(select(func.count()).select_from(Project)).scalar(),
        }


def write(tmp: Path, name: str, content: str | bytes) -> Path:
    path = tmp / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


APP = str(Path(__file__).resolve().parent.parent / "app.py")


def open_app(username: str, page: str | None = None, *, query: dict[str, str] | None = None,
             timeout: float = 120) -> AppTest:
    """The app as ``username`` after login (session state as app.py leaves it), optionally
    with URL query parameters, switched to ``page``."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    for key, value in {"authentication_status": True, "username": username,
                       "logout": False}.items():
        at.session_state[key] = value
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.run()
    if page is not None:
        at.switch_page(page).run()
    return at
